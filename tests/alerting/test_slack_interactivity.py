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
    handler = InteractivityHandler(repo, notifier(slack.base_url), SECRET)
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
    handler = InteractivityHandler(repo, notifier(slack.base_url), SECRET)
    assert handler.handle(*_signed(_click(alert_id), secret="wrong")).status == 401
    assert handler.handle(*_signed(_click(alert_id), age=600)).status == 401
    body, headers = _signed(_click(alert_id))
    assert handler.handle(body + b"x", headers).status == 401
    assert repo.states(["detractor"])[("detractor", "responses.csv/R1")].closed_at is None


def test_the_wsgi_endpoint(tmp_path: Path, repo: AlertRepo, slack: FakeSlack) -> None:
    alert_id = _alerted(tmp_path, repo, slack)
    app = wsgi_app(InteractivityHandler(repo, notifier(slack.base_url), SECRET))
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
