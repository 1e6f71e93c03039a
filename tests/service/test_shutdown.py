"""SIGTERM: stop at the next checkpoint, release everything, exit 0 within the grace period."""

from __future__ import annotations

import json
import signal
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agent.core.contract import MetricsConfig
from agent.state.leader import FileLeadership
from agent.state.store import StateStore
from agent.sync.cycle import compute_from_state
from tests.service import procs
from tests.service.loopback import Request
from tests.service.portfolio import Portfolio, write_csv
from tests.service.stack import VendorStack

pytestmark = pytest.mark.slow


def test_sigterm_during_write_back_stops_after_the_batch_and_exits_zero(
    tmp_path: Path, stack: VendorStack
) -> None:
    config = stack.write_config(tmp_path)
    write_csv(tmp_path / "drop" / "answers.csv", Portfolio().response_rows())
    first_write = threading.Event()

    def slow_writes(request: Request, _reply: Any) -> None:
        # Reads are chained in Composite requests too: a write is a PATCH, alone or inside.
        if "/composite" in request.path and (
            request.method == "PATCH" or b'"PATCH"' in request.body
        ):
            first_write.set()
            time.sleep(0.5)  # a slow CRM: the batch is still in flight when SIGTERM comes

    stack.tap("salesforce", slow_writes)
    log = tmp_path / "agent.log"
    proc = procs.start(config, log=log)
    try:
        assert first_write.wait(60), log.read_text()[-3000:]
        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        code = proc.wait(30)
        took = time.monotonic() - started
    finally:
        if proc.poll() is None:
            proc.kill()
    assert code == 0, log.read_text()[-3000:]
    assert took < 10  # the grace period is 20 s; one batch is 0.5 s

    events = [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]
    names = [e["event"] for e in events]
    assert "stop_requested" in names
    assert names.index("outbox_flushed") < names.index("leadership released")
    assert names[-1] == "agent_stopped"
    assert "job_interrupted" in names
    store = StateStore.open(f"sqlite:///{tmp_path / 'state.db'}")
    (writeback,) = store.recent_cycles(1, job="writeback")
    assert (writeback.status, writeback.counts.get("interrupted")) == ("ok", 1)
    written = store.written_values("salesforce", "account")
    written.update(store.written_values("salesforce", "contact"))
    assert 0 < len(written) < 24  # the batches before the stop are recorded, not the rest
    lock = FileLeadership(tmp_path / "state.db")
    assert lock.try_acquire()  # the agent released it
    lock.release()

    stack.sf_app.app = stack.sf_real
    assert procs.run_once(config, log) == 0  # the next start resumes and finishes
    document = compute_from_state(store, "salesforce", datetime.now(UTC), MetricsConfig()).document
    assert stack.field_mismatches(document) == []
    store.close()
