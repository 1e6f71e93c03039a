"""429s, 5xx, timeouts and dropped connections at a configured rate: the cycle converges."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.alerts.repo import AlertRepo
from agent.core.contract import MetricsConfig
from agent.state.store import StateStore
from agent.sync.cycle import compute_from_state
from tests.service import procs
from tests.service.portfolio import Portfolio, write_csv
from tests.service.stack import VendorStack

pytestmark = pytest.mark.slow

#: The share of requests (to each vendor) answered with a fault.
FAULT_RATE = 0.25


def test_the_cycle_converges_through_vendor_faults(tmp_path: Path, stack: VendorStack) -> None:
    config = stack.write_config(tmp_path)
    rows = Portfolio().response_rows()
    write_csv(tmp_path / "drop" / "answers.csv", rows)
    sf_faults, slack_faults = stack.faults(FAULT_RATE, seed=42)
    log = tmp_path / "agent.log"
    runs = procs.converge(config, log, attempts=10)
    procs.converge(config, log)  # and one more clean pass: nothing left to do
    injected = Counter(sf_faults.injected) + Counter(slack_faults.injected)
    assert set(injected) == {"429", "503", "timeout", "drop", "drop_after"}, injected

    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        document = compute_from_state(
            store, "salesforce", datetime.now(UTC), MetricsConfig()
        ).document
        assert stack.field_mismatches(document) == []
        assert store.count_responses() == len(rows)
        outbox = AlertRepo(store.engine).recent(1000)
        assert {r.status for r in outbox} == {"sent"}
        posted = Counter(
            m["metadata"]["event_payload"]["alert_id"]
            for messages in stack.slack.messages.values()
            for m in messages
        )
        assert set(posted) == {r.alert_id for r in outbox}
        assert max(posted.values()) == 1, "a dropped answer must not double a message"
    finally:
        store.close()
    assert runs >= 1
