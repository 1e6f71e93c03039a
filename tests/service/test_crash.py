"""kill -9 at random points of write-back and alert delivery; restart; nothing lost or doubled.

The agent runs as a real subprocess against Salesforce and Slack fakes on loopback.
It is killed from inside the fake, after the fake acted on a request and before the
agent hears the answer: the most dangerous moment (the vendor has it, the state does
not know).
"""

from __future__ import annotations

import random
import signal
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agent.alerts.repo import AlertRepo
from agent.core.contract import MetricsConfig
from agent.state.store import StateStore
from agent.sync.cycle import compute_from_state
from tests.service import procs
from tests.service.loopback import Request
from tests.service.portfolio import Portfolio, write_csv
from tests.service.stack import VendorStack

pytestmark = pytest.mark.slow


def _is_write(request: Request) -> bool:
    return "/composite" in request.path


def _is_post(request: Request) -> bool:
    return request.path.endswith("/chat.postMessage")


def _crash_runs(
    stack: VendorStack, config: Path, log: Path, *, vendor: str, match: Any, seed: int
) -> int:
    """Three runs, each killed at a random matching request; how many were killed."""
    rng = random.Random(seed)
    killed = 0
    for _ in range(3):
        ref: dict[str, Any] = {}
        stack.sf_app.app, stack.slack_app.app = stack.sf_real, stack.slack_real
        stack.tap(vendor, procs.killer(ref, match, rng.randint(1, 4)))
        ref["proc"] = procs.start(config, "--once", log=log)
        code = ref["proc"].wait(180)
        killed += code == -signal.SIGKILL
    stack.sf_app.app, stack.slack_app.app = stack.sf_real, stack.slack_real
    return killed


def _check_state(stack: VendorStack, tmp_path: Path, rows: list[dict[str, object]]) -> StateStore:
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    document = compute_from_state(store, "salesforce", datetime.now(UTC), MetricsConfig()).document
    assert stack.field_mismatches(document) == []
    stored = sorted(r.response_id for r in store.load_responses())
    assert stored == sorted(str(r["response_id"]) for r in rows)  # each answer once
    assert (tmp_path / "drop" / "processed" / "answers.csv").is_file()
    return store


def test_killed_during_write_back_the_crm_ends_with_the_right_values(
    tmp_path: Path, stack: VendorStack
) -> None:
    config = stack.write_config(tmp_path)
    rows = Portfolio().response_rows()
    write_csv(tmp_path / "drop" / "answers.csv", rows)
    log = tmp_path / "agent.log"
    killed = _crash_runs(stack, config, log, vendor="salesforce", match=_is_write, seed=20261123)
    assert killed >= 2, log.read_text()[-3000:]
    procs.converge(config, log)
    store = _check_state(stack, tmp_path, rows)
    failed = store.failed_records("salesforce", "account")
    assert failed == {}
    store.close()


def test_killed_during_alert_delivery_no_alert_is_lost_or_doubled(
    tmp_path: Path, stack: VendorStack
) -> None:
    config = stack.write_config(tmp_path)
    rows = Portfolio().response_rows()
    write_csv(tmp_path / "drop" / "answers.csv", rows)
    log = tmp_path / "agent.log"
    killed = _crash_runs(stack, config, log, vendor="slack", match=_is_post, seed=7)
    assert killed >= 2, log.read_text()[-3000:]
    procs.converge(config, log)
    store = _check_state(stack, tmp_path, rows)
    repo = AlertRepo(store.engine)
    outbox = repo.recent(1000)
    assert outbox
    assert {r.status for r in outbox} == {"sent"}
    posted = [
        m["metadata"]["event_payload"]["alert_id"]
        for messages in stack.slack.messages.values()
        for m in messages
    ]
    doubled = [a for a, n in Counter(posted).items() if n > 1]
    assert doubled == []
    assert set(posted) == {r.alert_id for r in outbox}
    sent = Counter((r.rule_id, r.subject, r.kind) for r in outbox)
    assert max(sent.values()) == 1  # one alert (and one escalation) per rule and subject
    assert ("executive-detractor", "file_drop/r1-0", "alert") in sent
    assert ("executive-detractor", "file_drop/r1-0", "escalation") in sent
    assert Counter((r.rule_id, r.kind) for r in outbox) == _reference(stack, tmp_path, rows)
    store.close()


def _reference(
    stack: VendorStack, tmp_path: Path, rows: list[dict[str, object]]
) -> Counter[tuple[str, str]]:
    """What one uninterrupted run on a fresh state alerts, by rule and kind."""
    ref = tmp_path / "reference"
    ref.mkdir()
    config = stack.write_config(ref)
    write_csv(ref / "drop" / "answers.csv", rows)
    assert procs.run_once(config, ref / "agent.log") == 0
    store = StateStore.open(f"sqlite:///{ref / 'state.db'}")
    try:
        return Counter((r.rule_id, r.kind) for r in AlertRepo(store.engine).recent(1000))
    finally:
        store.close()
