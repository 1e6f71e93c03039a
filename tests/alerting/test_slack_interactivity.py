"""The close-loop button: signed requests only; the message is updated in place."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlencode

from factories import AS_OF, response_facts
from factories import inputs as make_inputs
from fake_slack import CHANNELS, FakeSlack
from rulefiles import CHANNELS as RULE_CHANNELS
from rulefiles import write_rules
from slack_sdk.signature import SignatureVerifier
from slackkit import notifier
from werkzeug.test import Client

from agent.alerts.interactivity import LoopCloser
from agent.alerts.pipeline import AlertPipeline
from agent.alerts.repo import AlertRepo
from agent.alerts.routing import Routing
from agent.rules.registry import RuleRegistry
from connectors.slack.blocks import CLOSE_LOOP_ACTION
from connectors.slack.interactivity import PATH, InteractivityHandler, wsgi_app

SECRET = "test-signing-secret"
RULES = """\
rules:
  - id: detractor
    description: Detractor
    scope: response
    when: response.category == "detractor"
    notify: {channel: cx-alerts}
    escalate: {after: 48h, to: cx-leadership}
"""


def _signed(
    payload: dict[str, object], secret: str = SECRET, age: int = 0
) -> tuple[bytes, dict[str, str]]:
    body = urlencode({"payload": json.dumps(payload)}).encode()
    stamp = str(int(time.time()) - age)
    signature = SignatureVerifier(secret).generate_signature(timestamp=stamp, body=body)
    return body, {
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": signature,
        "Content-Type": "application/x-www-form-urlencoded",
    }


def _click(alert_id: str, user: str = "U0CLOSER") -> dict[str, object]:
    return {
        "type": "block_actions",
        "user": {"id": user, "username": "closer"},
        "actions": [{"action_id": CLOSE_LOOP_ACTION, "type": "button", "value": alert_id}],
        "container": {"type": "message", "channel_id": CHANNELS["cx-alerts"]},
    }


def _alerted(tmp_path: Path, repo: AlertRepo, slack: FakeSlack) -> str:
    registry = RuleRegistry(
        write_rules(tmp_path / "rules", RULES), channels=RULE_CHANNELS, routes={}
    )
    routing = Routing(channels=CHANNELS, default_channel="cx-alerts")
    pipeline = AlertPipeline(
        repo, registry, routing, notifier(slack.base_url), admin_channel="C0ADMIN"
    )
    pipeline.run(
        make_inputs(responses=[response_facts("R1", submitted_at=datetime.now(UTC))]), AS_OF
    )
    (message,) = slack.messages[CHANNELS["cx-alerts"]]
    return str(message["metadata"]["event_payload"]["alert_id"])


def test_a_signed_click_closes_the_loop_and_updates_the_message(
    tmp_path: Path, repo: AlertRepo, slack: FakeSlack
) -> None:
    alert_id = _alerted(tmp_path, repo, slack)
    handler = InteractivityHandler(SECRET, LoopCloser(repo, notifier(slack.base_url)))
    reply = handler.handle(*_signed(_click(alert_id)))
    assert reply.status == 200
    updates = [args for method, args in slack.calls if method == "chat.update"]
    assert len(updates) == 1
    (message,) = slack.messages[CHANNELS["cx-alerts"]]
    assert updates[0]["ts"] == message["ts"]
    assert updates[0]["channel"] == CHANNELS["cx-alerts"]
    assert "Loop closed by <@U0CLOSER>" in json.dumps(message["blocks"])
    assert "within the SLA" in json.dumps(message["blocks"])
    assert CLOSE_LOOP_ACTION not in json.dumps(message["blocks"])
    state = repo.states(["detractor"])[("detractor", "responses.csv/R1")]
    assert state.closed_by == "<@U0CLOSER>"
    handler.handle(*_signed(_click(alert_id, "U0OTHER")))  # a second click changes nothing
    assert len([1 for method, _ in slack.calls if method == "chat.update"]) == 1


def test_bad_or_stale_signatures_are_refused(
    tmp_path: Path, repo: AlertRepo, slack: FakeSlack
) -> None:
    alert_id = _alerted(tmp_path, repo, slack)
    handler = InteractivityHandler(SECRET, LoopCloser(repo, notifier(slack.base_url)))
    assert handler.handle(*_signed(_click(alert_id), secret="wrong")).status == 401
    assert handler.handle(*_signed(_click(alert_id), age=600)).status == 401
    body, headers = _signed(_click(alert_id))
    assert handler.handle(body + b"x", headers).status == 401
    assert repo.states(["detractor"])[("detractor", "responses.csv/R1")].closed_at is None


def test_the_wsgi_endpoint(tmp_path: Path, repo: AlertRepo, slack: FakeSlack) -> None:
    alert_id = _alerted(tmp_path, repo, slack)
    app = wsgi_app(InteractivityHandler(SECRET, LoopCloser(repo, notifier(slack.base_url))))
    client = Client(app)
    body, headers = _signed(_click(alert_id))
    assert client.post(PATH, data=body, headers=headers).status_code == 200
    assert client.get(PATH).status_code == 404
    unsigned = client.post(PATH, data=body, headers={"Content-Type": headers["Content-Type"]})
    assert unsigned.status_code == 401
    assert repo.states(["detractor"])[("detractor", "responses.csv/R1")].closed_at is not None
    assert (
        timedelta(0)
        <= datetime.now(UTC)
        - repo.states(["detractor"])[("detractor", "responses.csv/R1")].closed_at
        < timedelta(minutes=1)
    )  # type: ignore[operator]


def test_slack_only_checks_and_parses_then_hands_the_click_to_the_port() -> None:
    """The adapter holds no alert logic: it passes the alert id and the presser along."""
    calls: list[tuple[str, str]] = []

    def close(alert_id: str, closed_by: str) -> bool:
        calls.append((alert_id, closed_by))
        return True

    handler = InteractivityHandler(SECRET, close)
    assert handler.handle(*_signed(_click("a-1", "U0PRESS"))).status == 200
    anonymous = {**_click("a-2"), "user": {}}
    assert handler.handle(*_signed(anonymous)).status == 200
    other = {**_click("a-3"), "actions": [{"action_id": "ax_open_crm", "type": "button"}]}
    assert handler.handle(*_signed(other)).status == 200
    assert handler.handle(*_signed({"type": "view_submission"})).status == 200
    assert handler.handle(*_signed(_click("a-4"), secret="wrong")).status == 401
    assert calls == [("a-1", "<@U0PRESS>"), ("a-2", "someone in Slack")]


def test_the_loop_closer_queues_the_update_for_the_scheduler(
    tmp_path: Path, repo: AlertRepo, slack: FakeSlack
) -> None:
    alert_id = _alerted(tmp_path, repo, slack)
    triggered: list[int] = []
    closer = LoopCloser(repo, notifier(slack.base_url), deliver_now=lambda: triggered.append(1))
    assert closer("no-such-alert", "<@U1>") is False
    assert triggered == []
    assert closer(alert_id, "<@U1>") is True
    assert triggered == [1]  # the scheduler's outbox job sends it, not this thread
    assert not [m for m, _ in slack.calls if m == "chat.update"]
    (pending,) = repo.pending(10)
    assert pending.kind == "update"
    assert closer(alert_id, "<@U2>") is False  # closed once
    assert triggered == [1]
