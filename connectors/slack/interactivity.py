"""The "Close loop" button: Slack's interactivity requests, verified and handled.

Slack posts ``application/x-www-form-urlencoded`` with one field, ``payload`` (JSON),
signed with the app's signing secret (``X-Slack-Signature``,
``X-Slack-Request-Timestamp``). A valid ``block_actions`` request for our button
closes the loop of the alert named in the button's value and updates the original
message in place (who closed it, when, within the SLA or not).

``InteractivityHandler.handle`` is framework-free; ``wsgi_app`` serves it on any
WSGI server (the agent's HTTP endpoint: point the Slack app's Interactivity
Request URL at ``https://<host>/slack/interactivity``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

import structlog
from slack_sdk.signature import SignatureVerifier

from agent.alerts.deliver import Notifier, deliver
from agent.alerts.pipeline import close_loop
from agent.alerts.repo import AlertRepo
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
    def __init__(
        self,
        repo: AlertRepo,
        notifier: Notifier,
        signing_secret: str,
        *,
        loop_sla: timedelta = timedelta(hours=48),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        deliver_now: Callable[[], object] | None = None,
    ) -> None:
        """``deliver_now`` replaces the inline delivery of the message update: the agent
        passes its scheduler's trigger, so one thread alone ever delivers the outbox."""
        self.deliver_now = deliver_now
        self.repo = repo
        self.notifier = notifier
        self.verifier = SignatureVerifier(signing_secret)
        self.loop_sla = loop_sla
        self.clock = clock

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
        now = self.clock()
        record = close_loop(self.repo, alert_id, closed_by, now, self.loop_sla)
        _log.info(
            "loop_closed_from_slack", alert_id=alert_id, user=user, recorded=record is not None
        )
        if record is None:
            return
        if self.deliver_now is not None:
            self.deliver_now()
        else:
            deliver(self.repo, self.notifier, now)


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
