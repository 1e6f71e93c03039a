"""Logs: every vendor call at debug with vendor, kind, status and latency; never a secret."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from agent.config.logging import configure_from_settings, configure_logging
from agent.config.settings import Settings
from agent.service import jobs
from agent.service.process import AgentProcess
from agent.state.leader import leadership_for
from agent.state.store import StateStore
from tests.service.portfolio import Portfolio, write_csv
from tests.service.stack import SESSION, WEBHOOK_SECRET, VendorStack

SLACK_TOKEN = "xoxb-test-token"
PG_PASSWORD = "pg-pass-w0rd-secret"


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    yield stream
    configure_logging(json=False, level="info")


def _agent(settings: Settings) -> AgentProcess:
    leadership = leadership_for(settings.state_url)
    leadership.acquire(wait=False)
    return AgentProcess(settings, StateStore.open(settings.state_url), leadership)


@pytest.mark.postgres
def test_a_full_cycle_logs_calls_and_counts_and_no_secret(
    tmp_path: Path,
    stack: VendorStack,
    postgres_url: str,
    lines: io.StringIO,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    state_url = make_url(postgres_url).set(password=PG_PASSWORD)  # trust auth ignores it
    config = stack.config(
        tmp_path,
        state_url=state_url.render_as_string(hide_password=False),
        log={"level": "debug", "format": "json"},
    )
    settings = Settings.model_validate(config)
    write_csv(tmp_path / "drop" / "answers.csv", Portfolio().response_rows())
    configure_from_settings(settings, stream=lines)
    agent = _agent(settings)
    results = agent.run_once()
    agent.store.close()
    assert all(r.ok for r in results), [r.error for r in results]
    first_run = len(lines.getvalue().splitlines())

    original = jobs.JOBS["outbox"]  # a failure whose message carries a secret
    monkeypatch.setitem(
        jobs.JOBS, "outbox", lambda rt: (_ for _ in ()).throw(RuntimeError(f"bad {SLACK_TOKEN}"))
    )
    agent = _agent(settings)
    failed = agent.run_once()[-1]
    monkeypatch.setitem(jobs.JOBS, "outbox", original)
    assert not failed.ok
    errors = [c.error for c in agent.store.recent_cycles(20) if c.error]
    agent.store.close()

    text = lines.getvalue()
    for secret in (SESSION, SLACK_TOKEN, WEBHOOK_SECRET, PG_PASSWORD):
        assert secret not in text, secret
    assert "[REDACTED]" in text
    events = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    calls = [e for e in events if e["event"] == "vendor_call"]
    assert {e["vendor"] for e in calls} == {"salesforce", "slack"}
    for event in calls:
        assert event["level"] == "debug"
        assert isinstance(event["latency_ms"], float)
        assert event["kind"]
        assert event["outcome"] in {"ok", "error"}
    assert {e["status"] for e in calls if e["vendor"] == "salesforce"} == {200}
    assert any(e["kind"] == "chat.postMessage" and e["status"] == 200 for e in calls)
    first = [json.loads(x) for x in text.splitlines()[:first_run] if x.startswith("{")]
    done = {e["job"]: e for e in first if e["event"] == "job_done"}
    assert set(done) >= {"crm_sync", "survey_ingest", "writeback", "alerts", "escalation"}
    assert done["writeback"]["written"] > 0
    assert all("seconds" in e for e in done.values())
    assert errors == ["RuntimeError: bad [REDACTED]"]
