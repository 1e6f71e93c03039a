"""Fencing across replicas: a leader that lost its lock session, or was paused, makes no
further side effect once a standby took over, and a hung leader is replaced.

Three agents run as subprocesses on one PostgreSQL state, with the Salesforce and
Slack fakes on loopback; the Slack fake counts posts per alert id. The leader's lock
session is ended with ``pg_terminate_backend`` while it delivers 20 new detractor
alerts (as a database failover or a network break would), with and without a pause
(SIGSTOP) around it; a leader is paused for longer than its lease; the leader is
killed ten times. Waits are generous but bounded: the machine may be loaded.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import threading
import time
import urllib.request
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fake_slack import FakeSlack
from pytest_httpserver import HTTPServer
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from agent.state.store import StateStore
from tests.salesforce.fake import FakeSalesforce
from tests.service import procs
from tests.service.httpkit import post_signed
from tests.service.loopback import Request
from tests.service.portfolio import Portfolio, write_csv
from tests.service.stack import WEBHOOK_SECRET, VendorStack

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

LEASE = 4.0
ACCOUNTS = 24
#: Executives: the rule ``executive-detractor`` alerts on each one's latest detractor answer.
EXECUTIVES = [f"p0@acct{i}.example" for i in range(1, ACCOUNTS + 1)]


class Replicas:
    """Three agents on one PostgreSQL state, their ports, logs and the fakes' counts."""

    def __init__(self, tmp_path: Path, stack: VendorStack, postgres_url: str) -> None:
        self.tmp_path = tmp_path
        self.stack = stack
        self.url = postgres_url
        self.ports = {name: procs.free_port() for name in ("a", "b", "c")}
        self.configs = {
            name: stack.write_config(
                tmp_path,
                f"{name}.yaml",
                state_url=postgres_url,
                server={"port": port},
                schedule={
                    "alerts": {"every": 3600},
                    "outbox": {"every": 3600},
                    "standby_poll_seconds": 0.3,
                    "leader_check_seconds": 0.5,
                    "lease_seconds": LEASE,
                },
            )
            for name, port in self.ports.items()
        }
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.writes: list[tuple[str, str, str]] = []
        self.posts: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        stack.tap("salesforce", self._count_writes)
        stack.tap("slack", self._count_posts)
        self.before_post: Any = None

    def _count_writes(self, request: Request, _reply: Any) -> None:
        if request.path.endswith("/composite/sobjects"):  # updates (PATCH), tasks (POST)
            with self._lock:
                for record in json.loads(request.body)["records"]:
                    for name, value in record.items():
                        if name not in {"attributes", "id"}:
                            key = record.get("id", request.method)
                            self.writes.append((key, name, json.dumps(value)))

    def _count_posts(self, request: Request, _reply: Any) -> None:
        if not request.path.endswith("chat.postMessage"):
            return
        alert_id = json.loads(request.body)["metadata"]["event_payload"]["alert_id"]
        with self._lock:
            self.posts.append((time.monotonic(), alert_id))
        if self.before_post is not None:
            self.before_post(alert_id)

    def start(self, name: str) -> None:
        log = self.tmp_path / f"{name}.log"
        self.procs[name] = procs.start(self.configs[name], log=log)

    def start_all(self) -> None:
        rows = self.stack.portfolio.response_rows()
        write_csv(self.tmp_path / "drop" / "answers.csv", rows)
        for name in self.ports:
            self.start(name)
        procs.wait_until(lambda: self.leader() is not None, 60, "a leader")
        procs.wait_until(
            lambda: (
                sorted(str(r) for r in self.roles().values()) == ["leader", "standby", "standby"]
            ),
            60,
            "one leader, two standbys",
        )
        self.wait_pass("the first leader's pass")

    def wait_pass(self, what: str) -> None:
        """Until the current leader has run every job once, and the outbox is empty."""
        procs.wait_until(lambda: _pass_done(self.url), 120, what)

    def role(self, name: str) -> str | None:
        try:
            url = f"http://127.0.0.1:{self.ports[name]}/healthz"
            with urllib.request.urlopen(url, timeout=2) as response:  # loopback
                return str(json.loads(response.read())["role"])
        except (OSError, ValueError):
            return None

    def roles(self) -> dict[str, str | None]:
        return {name: self.role(name) for name in self.ports}

    def leader(self) -> str | None:
        return next((n for n, r in self.roles().items() if r == "leader"), None)

    def posted(self) -> Counter[str]:
        with self._lock:
            return Counter(alert_id for _, alert_id in self.posts)

    def detractors(self, count: int, tag: str, via: str, first: int = 0) -> list[str]:
        """POST ``count`` detractor answers (executives from ``first`` on) to agent ``via``."""
        ids = []
        for index in range(first, first + count):
            rid = f"{tag}-{index}"
            answer = {
                "response_id": rid,
                "email": EXECUTIVES[index % len(EXECUTIVES)],
                "score": 1,
                "submitted_at": datetime.now(UTC).isoformat(),
                "comment": f"answer {rid}",
            }
            status = _send(f"http://127.0.0.1:{self.ports[via]}", answer)
            assert status[0] == 200, status
            ids.append(f"executive-detractor:webhook/{rid}")
        return ids

    def terminate_lock_session(self, name: str) -> int:
        """End the lock session of agent ``name`` on the server; how many were ended."""
        pid = self.procs[name].pid
        admin = create_engine(make_url(self.url), poolclass=NullPool)
        try:
            with admin.connect() as conn:
                ended = conn.execute(
                    text(
                        "SELECT pg_terminate_backend(a.pid) FROM pg_stat_activity a "
                        "JOIN pg_locks l ON l.pid = a.pid WHERE l.locktype = 'advisory' "
                        "AND l.granted AND a.application_name LIKE :app"
                    ),
                    {"app": f"ax-agent pid {pid} on %"},
                ).all()
                conn.commit()
        finally:
            admin.dispose()
        return len(ended)

    def log(self, name: str) -> list[dict[str, Any]]:
        lines = (self.tmp_path / f"{name}.log").read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    def tails(self) -> str:
        return "\n".join(
            f"--- {n}\n" + (self.tmp_path / f"{n}.log").read_text()[-2500:] for n in self.procs
        )

    def close(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                with _suppress():
                    os.kill(proc.pid, signal.SIGCONT)
                proc.kill()
                proc.wait(10)


class _suppress:  # noqa: N801  # a tiny contextlib.suppress(ProcessLookupError)
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return exc[0] is ProcessLookupError


@pytest.fixture
def replicas(tmp_path: Path, postgres_url: str) -> Any:
    # A threaded Slack fake: a paused agent half-way through an upload must not hold
    # the fake's only thread (Slack itself serves everyone at once).
    server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    server.start()
    stack = VendorStack(Portfolio(accounts=ACCOUNTS), FakeSalesforce(), FakeSlack(server).install())
    group = Replicas(tmp_path, stack, postgres_url)
    try:
        yield group
    finally:
        group.close()
        stack.close()
        server.stop()


def _send(base: str, answer: dict[str, Any]) -> tuple[int, Any]:
    """POST one answer as a survey tool does: a 503 (the database cannot take it now,
    e.g. a paused agent holds its rows) is sent again after its Retry-After, a few times."""
    for _ in range(6):
        status = post_signed(base, answer, WEBHOOK_SECRET)
        if status[0] != 503:
            return status
        time.sleep(float(status[1]["retry_after"]))
    return status


def _pass_done(url: str) -> bool:
    jobs = {"crm_sync", "survey_ingest", "writeback", "alerts", "escalation", "outbox"}
    with StateStore.open(url) as store, store.engine.connect() as conn:
        done = conn.execute(
            text(
                "SELECT DISTINCT job FROM cycles WHERE status = 'ok' "
                "AND epoch = (SELECT epoch FROM leadership)"
            )
        ).scalars()
        pending = conn.execute(
            text("SELECT count(*) FROM alert_outbox WHERE status = 'pending'")
        ).scalar_one()
        return set(done) >= jobs and pending == 0


def _epoch(url: str) -> int:
    with StateStore.open(url) as store, store.engine.connect() as conn:
        return int(conn.execute(text("SELECT epoch FROM leadership")).scalar_one())


def _outbox_sent(url: str, ids: list[str]) -> int:
    with StateStore.open(url) as store, store.engine.connect() as conn:
        rows = conn.execute(
            text("SELECT count(*) FROM alert_outbox WHERE status = 'sent' AND alert_id = ANY(:i)"),
            {"i": ids},
        ).scalar_one()
    return int(rows)


def test_a_leader_whose_lock_session_ends_mid_delivery_sends_nothing_twice(
    replicas: Replicas,
) -> None:
    replicas.start_all()
    old = replicas.leader()
    assert old is not None
    seen = {"n": 0}

    def slow_and_cut(alert_id: str) -> None:
        if "webhook/burst-" not in alert_id:
            return
        time.sleep(0.15)  # a slow Slack: the delivery of 20 takes seconds
        seen["n"] += 1
        if seen["n"] == 5:
            assert replicas.terminate_lock_session(old) == 1

    replicas.before_post = slow_and_cut
    standby = next(n for n in replicas.ports if n != old)
    ids = replicas.detractors(20, "burst", via=standby)
    # Generous bounds: three agents share a loaded 2-core CI machine. What is asserted is
    # that every alert arrives exactly once, not how fast.
    procs.wait_until(lambda: all(replicas.posted()[i] for i in ids), 180, "all 20 alerts in Slack")
    procs.wait_until(lambda: _outbox_sent(replicas.url, ids) == 20, 120, "all 20 recorded sent")
    # A new epoch leads (the old process may win it again after standing by: fenced all
    # the same, its first epoch's in-memory list is gone).
    procs.wait_until(lambda: _epoch(replicas.url) > 1, 30, "a new epoch")
    time.sleep(2)  # anything the old epoch still had in memory would show up now

    posted = replicas.posted()
    assert {i: posted[i] for i in ids} == dict.fromkeys(ids, 1), replicas.tails()
    assert max(posted.values()) == 1  # nor any other alert (account alerts the answers raised)
    assert replicas.procs[old].poll() is None  # it lives on
    events = [e["event"] for e in replicas.log(old)]
    assert "leadership_stepped_down" in events


def test_a_leader_paused_around_its_session_loss_makes_no_post_or_write_after_resuming(
    replicas: Replicas,
) -> None:
    replicas.start_all()
    old = replicas.leader()
    assert old is not None
    old_proc = replicas.procs[old]
    paused = threading.Event()
    seen = {"n": 0}

    def pause_and_cut(alert_id: str) -> None:
        if "webhook/pause-" not in alert_id:
            return
        seen["n"] += 1
        if seen["n"] == 5 and not paused.is_set():
            # Slack took the 5th message; the leader is stopped before it hears back.
            os.kill(old_proc.pid, signal.SIGSTOP)
            paused.set()
            replicas.terminate_lock_session(old)

    replicas.before_post = pause_and_cut
    standby = next(n for n in replicas.ports if n != old)
    ids = replicas.detractors(20, "pause", via=standby)
    assert paused.wait(90), replicas.tails()
    procs.wait_until(
        lambda: replicas.leader() not in (None, old), LEASE + 20, "a standby takes over"
    )
    # Generous bounds: three agents share a loaded 2-core CI machine. What is asserted is
    # that every alert arrives exactly once, not how fast.
    procs.wait_until(lambda: all(replicas.posted()[i] for i in ids), 180, "all 20 alerts in Slack")
    procs.wait_until(lambda: _outbox_sent(replicas.url, ids) == 20, 120, "all 20 recorded sent")
    replicas.wait_pass("the new leader's pass")
    time.sleep(1)
    posts, writes = len(replicas.posts), len(replicas.writes)

    os.kill(old_proc.pid, signal.SIGCONT)
    procs.wait_until(lambda: replicas.role(old) == "standby", 30, "the old leader stands by")
    time.sleep(3)

    assert len(replicas.posts) == posts, replicas.tails()  # no post after SIGCONT
    assert len(replicas.writes) == writes  # and no CRM write
    posted = replicas.posted()
    assert max(posted.values()) == 1
    assert {i: posted[i] for i in ids} == dict.fromkeys(ids, 1)
    events = [e["event"] for e in replicas.log(old)]
    assert "leadership_stepped_down" in events


def test_a_leader_paused_longer_than_its_lease_is_replaced_and_steps_down(
    replicas: Replicas,
) -> None:
    replicas.start_all()
    old = replicas.leader()
    assert old is not None
    old_proc = replicas.procs[old]
    time.sleep(1)
    os.kill(old_proc.pid, signal.SIGSTOP)
    paused_at = time.monotonic()
    took = procs.wait_until(
        lambda: replicas.leader() not in (None, old), LEASE + 30, "a standby takes over"
    )
    new = replicas.leader()
    assert new is not None
    assert took <= LEASE + 5, f"took {took:.1f} s"
    (alert,) = replicas.detractors(1, "during-pause", via=new)
    procs.wait_until(lambda: replicas.posted()[alert] == 1, 30, "the detractor in Slack")
    assert old_proc.poll() is None
    assert time.monotonic() - paused_at > LEASE

    os.kill(old_proc.pid, signal.SIGCONT)
    procs.wait_until(lambda: replicas.role(old) == "standby", 30, "the old leader stands by")
    time.sleep(2)
    assert replicas.leader() == new
    assert max(replicas.posted().values()) == 1
    events = [e["event"] for e in replicas.log(old)]
    assert "leadership_stepped_down" in events or "leader_stepping_down" in events


def test_ten_kills_of_the_leader_never_double_an_alert(replicas: Replicas) -> None:
    replicas.start_all()
    rng = random.Random(16)  # test timing, not cryptography
    takeovers: list[float] = []
    ids: list[str] = []
    for round_ in range(10):
        leader = replicas.leader()
        assert leader is not None
        standby = next(n for n in replicas.ports if n != leader)
        ids += replicas.detractors(2, f"kill{round_}", via=standby, first=2 * round_)
        time.sleep(rng.uniform(0.0, 1.0))
        replicas.procs[leader].send_signal(signal.SIGKILL)
        replicas.procs[leader].wait(10)
        takeovers.append(
            procs.wait_until(
                lambda leader=leader: replicas.leader() not in (None, leader),
                LEASE + 20,
                "takeover",
            )
        )
        replicas.start(leader)  # back as a standby
        procs.wait_until(lambda leader=leader: replicas.role(leader) == "standby", 60, "restart")
    procs.wait_until(lambda: all(replicas.posted()[i] for i in ids), 180, "every alert sent")
    posted = replicas.posted()
    assert max(posted.values()) == 1, [k for k, v in posted.items() if v > 1]
    assert max(takeovers) < LEASE + 5
