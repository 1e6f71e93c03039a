"""Running one job: the cycles log, a summary log line, the metrics; never an exception.

Every run is one row of the ``cycles`` table (job, start, end, status, counts, error,
secrets masked, with the replica and leadership epoch that ran it) and one
``job_done`` / ``job_failed`` log event with its counts and duration. A run stopped
at a checkpoint by a shutdown is recorded ``ok`` with ``interrupted: 1`` in its
counts: what it committed is done, the rest resumes. A run whose claim was refused
(``FencedError``: another agent leads now) stops at once and is recorded ``failed``
only if no newer leader closed it already: an older epoch never overwrites that.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import structlog

from agent.core.compute import without_gc
from agent.core.errors import KnownError
from agent.service.checkpoint import Interrupted
from agent.service.jobs import JOBS
from agent.service.runtime import Runtime
from agent.service.telemetry import CYCLE_SECONDS, CYCLES, LAST_SUCCESS
from agent.state.errors import FencedError
from agent.state.records import CycleStatus

__all__ = ["JobResult", "run_job"]

_log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class JobResult:
    job: str
    ok: bool
    seconds: float
    counts: Mapping[str, int] = field(default_factory=dict)
    error: str | None = None
    interrupted: bool = False
    #: Stopped because this agent's leadership epoch was superseded.
    fenced: bool = False


def run_job(rt: Runtime, job: str) -> JobResult:
    """Run ``job`` once and record how it went; a failure is returned, not raised."""
    started = time.perf_counter()
    with structlog.contextvars.bound_contextvars(job=job):
        try:
            cycle_id = rt.store.start_cycle(job)
        except Exception as exc:  # the state database is unreachable: nothing can be recorded
            return _failed(job, started, None, {}, exc)
        with structlog.contextvars.bound_contextvars(cycle=cycle_id):
            return _run(rt, job, cycle_id, started)


def _run(rt: Runtime, job: str, cycle_id: int, started: float) -> JobResult:
    try:
        counts = _collector_paused(JOBS[job], rt)
    except Interrupted:
        result = JobResult(job, True, time.perf_counter() - started, {"interrupted": 1}, None, True)
        _finish(rt, cycle_id, "ok", result)
        _log.info("job_interrupted", job=job, seconds=round(result.seconds, 3))
        CYCLES.labels(job=job, outcome="interrupted").inc()
        return result
    except FencedError as exc:  # another agent leads now: stop, make nothing more
        result = JobResult(
            job, False, time.perf_counter() - started, {"fenced": 1}, str(exc), fenced=True
        )
        _log.warning("job_fenced", job=job, error=str(exc))
        CYCLES.labels(job=job, outcome="fenced").inc()
        _finish(rt, cycle_id, "failed", result)
        return result
    except Exception as exc:  # one job's failure must not stop the agent
        return _failed(job, started, (rt, cycle_id), getattr(exc, "counts", {}), exc)
    result = JobResult(job, True, time.perf_counter() - started, counts)
    _finish(rt, cycle_id, "ok", result)
    CYCLES.labels(job=job, outcome="ok").inc()
    CYCLE_SECONDS.labels(job=job).observe(result.seconds)
    LAST_SUCCESS.labels(job=job).set_to_current_time()
    _log.info("job_done", job=job, seconds=round(result.seconds, 3), **counts)
    return result


def _collector_paused(
    job: Callable[[Runtime], Mapping[str, int]], rt: Runtime
) -> Mapping[str, int]:
    """Run ``job`` with the cycle collector paused (on again afterwards, whatever the
    outcome).

    A job at 50,000 accounts keeps millions of acyclic objects alive for seconds (the
    alerts job's 110,000 matches and their facts, the task plan). With the collector
    on, its full passes over them held every thread for 0.3-0.8 s, every second or
    two, finding nothing: a detractor decided on another thread waited for each (the
    webhook benchmark through a cycle). Once the job is done its temporaries are gone,
    and the first pass after it scans what it kept (a computation's result is frozen
    already, ``CycleFigures``)."""
    with without_gc():
        return job(rt)


def _failed(
    job: str,
    started: float,
    where: tuple[Runtime, int] | None,
    counts: Mapping[str, int],
    exc: Exception,
) -> JobResult:
    error = f"{type(exc).__name__}: {exc}"
    result = JobResult(job, False, time.perf_counter() - started, dict(counts), error)
    trace = None if isinstance(exc, KnownError) else exc  # tracebacks are for bugs
    _log.error(
        "job_failed",
        job=job,
        seconds=round(result.seconds, 3),
        error=error,
        exc_info=trace,
        **counts,
    )
    CYCLES.labels(job=job, outcome="failed").inc()
    CYCLE_SECONDS.labels(job=job).observe(result.seconds)
    if where is not None:
        _finish(where[0], where[1], "failed", result)
    return result


def _finish(rt: Runtime, cycle_id: int, status: CycleStatus, result: JobResult) -> None:
    try:
        if not rt.store.finish_cycle(cycle_id, status, result.counts, result.error):
            _log.warning("job_outcome_superseded", cycle=cycle_id, status=status)
    except Exception as exc:  # the run is logged either way; the database may be what failed
        _log.warning("job_outcome_not_recorded", cycle=cycle_id, error=str(exc))
