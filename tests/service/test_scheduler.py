"""The scheduler: order, triggers, failures retried on the cadence, stop and lost leadership."""

from __future__ import annotations

import random
import threading
import time
from datetime import UTC, datetime, timedelta

from agent.service.cadence import Cadence
from agent.service.runner import JobResult
from agent.service.scheduler import Scheduler

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


def _recorder(fail: set[str] | None = None) -> tuple[list[str], object]:
    ran: list[str] = []

    def run(job: str) -> JobResult:
        ran.append(job)
        ok = job not in (fail or set())
        return JobResult(job, ok, 0.0, {}, None if ok else "boom")

    return ran, run


def test_run_once_runs_every_enabled_job_in_dependency_order() -> None:
    ran, run = _recorder(fail={"writeback"})
    cadences = {j: Cadence(every=60) for j in ("outbox", "alerts", "crm_sync", "writeback")}
    results = Scheduler(cadences, run).run_once()  # type: ignore[arg-type]
    assert ran == ["crm_sync", "writeback", "alerts", "outbox"]
    assert [r.ok for r in results] == [True, False, True, True]


def test_due_jobs_run_earliest_first_ties_in_dependency_order() -> None:
    clock = Clock()
    _ran, run = _recorder()
    cadences = {"crm_sync": Cadence(every=600), "alerts": Cadence(every=60)}
    sched = Scheduler(cadences, run, clock=clock, rng=random.Random(0))  # type: ignore[arg-type]
    sched._due = {"alerts": T0, "crm_sync": T0}
    assert sched.pick(T0) == ("crm_sync", 0.0)
    sched.execute("crm_sync")
    assert sched.pick(T0) == ("alerts", 0.0)
    sched.execute("alerts")
    job, wait = sched.pick(T0)
    assert job is None
    assert wait == 60.0  # alerts again in a minute, the sync in ten
    clock.now = T0 + timedelta(seconds=61)
    assert sched.pick(clock.now)[0] == "alerts"


def test_a_trigger_goes_before_due_jobs_and_unknown_jobs_are_ignored() -> None:
    _ran, run = _recorder()
    sched = Scheduler({"alerts": Cadence(every=60), "crm_sync": Cadence(every=60)}, run)  # type: ignore[arg-type]
    sched._due = {"alerts": T0 + timedelta(hours=1), "crm_sync": T0}
    sched.trigger("escalation")  # not enabled
    sched.trigger("alerts")
    sched.trigger("alerts")  # asked twice before it ran: runs once
    assert sched.pick(T0) == ("alerts", 0.0)
    assert sched.pick(T0) == ("crm_sync", 0.0)


def test_the_loop_keeps_running_after_failures_and_stops_when_asked() -> None:
    ran, run = _recorder(fail={"crm_sync"})
    sched = Scheduler({"crm_sync": Cadence(every=0.05), "alerts": Cadence(every=0.05)}, run)  # type: ignore[arg-type]
    outcome: list[str] = []
    thread = threading.Thread(target=lambda: outcome.append(sched.run(lambda: True, 0.05)))
    thread.start()
    deadline = time.monotonic() + 5
    while ran.count("crm_sync") < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    sched.stop()
    thread.join(5)
    assert outcome == ["stopped"]
    assert ran.count("crm_sync") >= 3  # failed each time, retried at the next cadence
    assert ran.count("alerts") >= 2
    assert sched.last["crm_sync"].ok is False


def test_a_trigger_wakes_an_idle_scheduler_at_once() -> None:
    ran, run = _recorder()
    sched = Scheduler({"alerts": Cadence(every=3600)}, run)  # type: ignore[arg-type]
    thread = threading.Thread(target=lambda: sched.run(lambda: True, 30))
    thread.start()
    _wait_for(lambda: ran == ["alerts"])  # the start-up run
    started = time.monotonic()
    sched.trigger("alerts")
    _wait_for(lambda: len(ran) == 2)
    assert time.monotonic() - started < 1.0
    sched.stop()
    thread.join(5)


def test_losing_the_leadership_ends_the_loop_before_the_next_job() -> None:
    ran, run = _recorder()
    leader = {"ok": True}
    sched = Scheduler({"alerts": Cadence(every=0.05)}, run)  # type: ignore[arg-type]
    outcome: list[str] = []
    thread = threading.Thread(target=lambda: outcome.append(sched.run(lambda: leader["ok"], 0.05)))
    thread.start()
    _wait_for(lambda: len(ran) >= 2)
    leader["ok"] = False
    thread.join(5)
    count = len(ran)
    time.sleep(0.2)
    assert outcome == ["lost"]
    assert len(ran) == count


def _wait_for(condition: object, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:  # type: ignore[operator]
        time.sleep(0.01)
    assert condition(), "condition not reached in time"  # type: ignore[operator]
