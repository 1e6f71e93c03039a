"""The agent's HTTP endpoints: liveness, readiness, metrics, routing, Slack's buttons."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from urllib.parse import urlencode

import pytest
from pydantic import SecretStr
from slack_sdk.signature import SignatureVerifier
from slackkit import record
from sqlalchemy import create_engine
from sqlalchemy.engine import make_url

from agent.alerts.console import ConsoleNotifier
from agent.alerts.model import AlertState
from agent.alerts.repo import AlertRepo
from agent.config.settings import Settings, SlackSettings
from agent.service.health import Health
from agent.service.webhook import WebhookHandler
from agent.state.store import StateStore
from agent.sync.wiring import build_interactivity
from connectors.slack.blocks import CLOSE_LOOP_ACTION
from tests.service.httpkit import call, serving, webhook_settings

SLACK_SECRET = "slack-signing-secret"


@pytest.fixture
def health(store: StateStore) -> Health:
    return Health(store, ["crm_sync", "alerts"])


@pytest.fixture
def base(store: StateStore, health: Health) -> Iterator[str]:
    with serving(health, WebhookHandler(webhook_settings(), store)) as url:
        yield url


def test_healthz_answers_while_the_process_lives(base: str, health: Health) -> None:
    assert call(f"{base}/healthz")[:2] == (200, {"status": "alive", "role": "starting"})


def test_readyz_needs_a_role_a_reachable_state_and_no_failed_job(
    base: str, health: Health, store: StateStore
) -> None:
    status, body, _ = call(f"{base}/readyz")
    assert (status, body["ready"], body["role"]) == (503, False, "starting")
    health.role = "standby"
    assert call(f"{base}/readyz")[:2] == (
        200,
        {"ready": True, "role": "standby", "state": "ok", "failed_jobs": {}},
    )
    cycle = store.start_cycle("crm_sync")
    store.finish_cycle(cycle, "failed", {}, "VendorError: salesforce: 503")
    health.role = "leader"
    status, body, _ = call(f"{base}/readyz")
    assert status == 503
    assert body["failed_jobs"] == {"crm_sync": "VendorError: salesforce: 503"}
    store.start_cycle("crm_sync")  # a new run, still running: the last finished one counts
    assert call(f"{base}/readyz")[0] == 503
    store.finish_cycle(store.start_cycle("crm_sync"), "ok", {"accounts_changed": 1})
    assert call(f"{base}/readyz")[0] == 200


def test_readyz_fails_when_the_state_database_is_unreachable(store: StateStore) -> None:
    url = make_url("postgresql+psycopg://nobody@127.0.0.1:1/gone")
    gone = StateStore(create_engine(url, connect_args={"connect_timeout": 2}), url)
    health = Health(gone, ["crm_sync"])
    health.role = "leader"
    with serving(health, WebhookHandler(webhook_settings(), store)) as base:
        status, body, _ = call(f"{base}/readyz")
        assert status == 503
        assert body["state"].startswith("unreachable: ")
        assert call(f"{base}/healthz")[0] == 200  # alive all the same
    gone.close()


def test_metrics_are_served_in_prometheus_text_format(base: str, store: StateStore) -> None:
    status, text, headers = call(f"{base}/metrics")
    assert status == 200
    assert headers["Content-Type"].startswith("text/plain")
    for family in (
        "ax_cycles_total",
        "ax_cycle_duration_seconds",
        "ax_job_last_success_timestamp_seconds",
        "ax_api_calls_total",
        "ax_api_call_duration_seconds",
        "ax_rate_limit_waits_total",
        "ax_records_written_total",
        "ax_alerts_total",
        "ax_alert_outbox_pending",
        "ax_webhook_requests_total",
    ):
        assert f"# TYPE {family}" in text, family


def test_unknown_paths_and_wrong_methods(base: str) -> None:
    assert call(f"{base}/nope")[:2] == (404, {"error": "no such endpoint: /nope"})
    status, _body, headers = call(f"{base}/webhooks/responses")
    assert (status, headers["Allow"]) == (405, "POST")
    assert call(f"{base}/healthz", "POST", b"")[0] == 405
    assert call(f"{base}/slack/interactivity", "POST", b"")[0] == 404  # not configured


def _slack_request(alert_id: str, secret: str = SLACK_SECRET) -> tuple[bytes, dict[str, str]]:
    payload = {
        "type": "block_actions",
        "user": {"id": "U0CLOSER"},
        "actions": [{"action_id": CLOSE_LOOP_ACTION, "type": "button", "value": alert_id}],
    }
    body = urlencode({"payload": json.dumps(payload)}).encode()
    stamp = str(int(time.time()))
    signature = SignatureVerifier(secret).generate_signature(timestamp=stamp, body=body)
    headers = {
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": signature,
        "Content-Type": "application/x-www-form-urlencoded",
    }
    return body, headers


def test_slack_buttons_are_served_and_hand_delivery_to_the_scheduler(
    store: StateStore, health: Health
) -> None:
    now = datetime.now(UTC)
    repo = AlertRepo(store.engine)
    repo.record(
        [record("detractor:webhook/r1", "C0CXALERTS", now)],
        [AlertState("detractor", "detractor:webhook/r1", True, now, now, "detractor:webhook/r1")],
    )
    settings = Settings(
        slack=SlackSettings(bot_token=SecretStr("xoxb-1"), signing_secret=SecretStr(SLACK_SECRET))
    )
    asked: list[str] = []
    slack = build_interactivity(
        settings, store.engine, ConsoleNotifier(lambda _t: None), lambda: asked.append("outbox")
    )
    assert slack is not None
    with serving(health, WebhookHandler(webhook_settings(), store), slack) as url:
        body, headers = _slack_request("detractor:webhook/r1", secret="wrong")
        assert call(f"{url}/slack/interactivity", "POST", body, headers)[0] == 401
        body, headers = _slack_request("detractor:webhook/r1")
        assert call(f"{url}/slack/interactivity", "POST", body, headers)[0] == 200
    assert asked == ["outbox"]
    assert [a.alert_id for a in repo.pending()] == [
        "detractor:webhook/r1",
        "upd:detractor:webhook/r1",
    ]


def test_without_a_signing_secret_there_is_no_slack_endpoint(store: StateStore) -> None:
    settings = Settings(slack=SlackSettings(bot_token=SecretStr("xoxb-1")))
    assert build_interactivity(settings, store.engine, ConsoleNotifier(), lambda: None) is None
