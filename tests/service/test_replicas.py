"""Two agents on one PostgreSQL state: one leads, the other stands by and takes over.

A detractor posted to the standby's webhook is stored there and reaches Slack through
the leader, woken through the database.

Kill -9 the leader after it finished its work: the standby takes the leadership
within a bounded time, runs every job, and writes no value to the CRM twice nor
sends any alert twice (the state says what is done).
"""

from __future__ import annotations

import json
import signal
import urllib.request
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from agent.state.store import StateStore
from tests.service import procs
from tests.service.httpkit import post_signed
from tests.service.loopback import Request
from tests.service.portfolio import Portfolio, write_csv
from tests.service.stack import WEBHOOK_SECRET, VendorStack

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

#: Seconds a standby may take to lead once the leader is gone (poll 0.3 s + start-up jobs).
TAKEOVER_BOUND = 10.0


def _role(port: int) -> str | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
            return str(json.loads(response.read())["role"])
    except OSError:
        return None


def _all_jobs_ok(store: StateStore, since: int) -> bool:
    jobs = {c.job for c in store.recent_cycles(100) if c.id > since and c.status == "ok"}
    return jobs >= {"crm_sync", "survey_ingest", "writeback", "alerts", "escalation", "outbox"}


def test_the_standby_takes_over_without_repeating_writes_or_alerts(
    tmp_path: Path, stack: VendorStack, postgres_url: str
) -> None:
    writes: list[tuple[str, str, str]] = []

    def count_writes(request: Request, _reply: Any) -> None:
        if request.path.endswith("/composite/sobjects"):
            for record in json.loads(request.body)["records"]:
                for name, value in record.items():
                    if name not in {"attributes", "id"}:
                        writes.append((record["id"], name, json.dumps(value)))

    stack.tap("salesforce", count_writes)
    ports = {name: procs.free_port() for name in ("a", "b")}
    configs = {
        name: stack.write_config(
            tmp_path,
            f"{name}.yaml",
            state_url=postgres_url,
            server={"port": port},
            schedule={"alerts": {"every": 3600}, "standby_poll_seconds": 0.3},
        )
        for name, port in ports.items()
    }
    write_csv(tmp_path / "drop" / "answers.csv", Portfolio().response_rows())
    agents = {name: procs.start(configs[name], log=tmp_path / f"{name}.log") for name in ports}
    store = StateStore.open(postgres_url)
    try:
        procs.wait_until(
            lambda: {_role(p) for p in ports.values()} == {"leader", "standby"}, 30, "roles"
        )
        leader = next(n for n, p in ports.items() if _role(p) == "leader")
        standby = next(n for n in ports if n != leader)
        procs.wait_until(lambda: _all_jobs_ok(store, 0), 60, "the leader's first pass")
        before = _posted(stack)
        answer = {"response_id": "via-standby", "email": "p0@acct2.example", "score": 1}
        answer["submitted_at"] = datetime.now(UTC).isoformat()
        assert post_signed(f"http://127.0.0.1:{ports[standby]}", answer, WEBHOOK_SECRET)[0] == 200
        took_alert = procs.wait_until(
            lambda: "executive-detractor:webhook/via-standby" in _posted(stack), 10, "wake"
        )
        assert took_alert < 5  # the leader was woken, not its hourly alerts cadence
        assert set(before) < set(_posted(stack))
        done_writes, done_posts = len(writes), _posted(stack)
        assert done_writes > 0
        assert sum(done_posts.values()) > 0
        last_cycle = store.recent_cycles(1)[0].id

        agents[leader].send_signal(signal.SIGKILL)
        agents[leader].wait(10)
        took = procs.wait_until(
            lambda: _role(ports[standby]) == "leader", TAKEOVER_BOUND, "takeover"
        )
        procs.wait_until(lambda: _all_jobs_ok(store, last_cycle), 60, "the new leader's pass")

        assert len(writes) >= done_writes  # the webhook's answer changed some figures
        assert max(Counter(writes).values()) == 1  # no value was ever written twice
        assert _posted(stack) == done_posts  # nothing alerted twice
        assert max(done_posts.values()) == 1
        assert took < TAKEOVER_BOUND
        agents[standby].send_signal(signal.SIGTERM)
        assert agents[standby].wait(30) == 0
    finally:
        for proc in agents.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        store.close()


def _posted(stack: VendorStack) -> Counter[str]:
    return Counter(
        m["metadata"]["event_payload"]["alert_id"]
        for messages in stack.slack.messages.values()
        for m in messages
    )
