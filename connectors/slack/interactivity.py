"""The "Close loop" button: Slack's interactivity requests, verified and parsed.

Slack posts ``application/x-www-form-urlencoded`` with one field, ``payload`` (JSON),
signed with the app's signing secret (``X-Slack-Signature``,
``X-Slack-Request-Timestamp``). For a valid ``block_actions`` request for our button
the handler calls the agent's ``CloseLoop`` port with the alert named in the button's
value and the user who pressed it; closing the loop and updating the original message
is the agent's business (``agent.alerts.interactivity``).

``InteractivityHandler.handle`` is framework-free; ``wsgi_app`` serves it on any
WSGI server (the agent's HTTP endpoint: point the Slack app's Interactivity
Request URL at ``https://<host>/slack/interactivity``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import structlog
from slack_sdk.signature import SignatureVerifier

from agent.core.ports import CloseLoop
from connectors.slack.blocks import CLOSE_LOOP_ACTION

__all__ = ["PATH", "InteractivityHandler", "Reply", "wsgi_app"]

PATH = "/slack/interactivity"
_log = structlog.get_logger(__name__)
_MAX_BODY = 1_000_000


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: str = ""


class InteractivityHandler:
    """Checks Slack's signature, reads the button press, hands it to ``close_loop``."""

    def __init__(self, signing_secret: str, close_loop: CloseLoop) -> None:
        self.verifier = SignatureVerifier(signing_secret)
        self.close_loop = close_loop

    def handle(self, body: bytes, headers: Mapping[str, str]) -> Reply:
        lowered = {k.lower(): v for k, v in headers.items()}
        if not self.verifier.is_valid_request(body, lowered):
            _log.warning("slack_interaction_rejected", reason="bad_signature")
            return Reply(401, "invalid signature")
        try:
            payload = json.loads(parse_qs(body.decode("utf-8"))["payload"][0])
        except (KeyError, IndexError, ValueError, UnicodeDecodeError):
            return Reply(400, "no payload")
        if payload.get("type") != "block_actions":
            return Reply(200)
        for action in payload.get("actions") or []:
            if action.get("action_id") == CLOSE_LOOP_ACTION:
                self._close(str(action.get("value") or ""), payload)
        return Reply(200)

    def _close(self, alert_id: str, payload: dict[str, Any]) -> None:
        user = (payload.get("user") or {}).get("id")
        closed_by = f"<@{user}>" if user else "someone in Slack"
        recorded = self.close_loop(alert_id, closed_by)
        _log.info("loop_closed_from_slack", alert_id=alert_id, user=user, recorded=recorded)


StartResponse = Callable[[str, list[tuple[str, str]]], Any]


def wsgi_app(
    handler: InteractivityHandler,
) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    """A WSGI application answering POST ``/slack/interactivity``."""

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != PATH or environ.get("REQUEST_METHOD") != "POST":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found"]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        if length > _MAX_BODY:
            start_response("413 Payload Too Large", [("Content-Type", "text/plain")])
            return [b"too large"]
        body = environ["wsgi.input"].read(length)
        headers = {
            key[5:].replace("_", "-").lower(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        reply = handler.handle(body, headers)
        start_response(
            f"{reply.status} {_REASONS.get(reply.status, '')}", [("Content-Type", "text/plain")]
        )
        return [reply.body.encode()]

    return app


_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found"}
