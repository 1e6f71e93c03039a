"""One cycle, whoever starts it: ``run --once``, the demo, or the scheduler's pass.

Every entry runs the same jobs (``agent.service.jobs``) through the same runner, in
dependency order, on one ``Runtime``. The jobs of a cycle share one instant (the
replay's ``--as-of``, or the wall clock when the cycle starts) and one computation
of the figures.
"""

from __future__ import annotations

import resource
from collections.abc import Callable, Mapping, Sequence

import structlog

from agent.service.memory import release_free_memory, resident_mb
from agent.service.runner import JobResult, run_job
from agent.service.runtime import Runtime

__all__ = ["run_cycle"]

_log = structlog.get_logger(__name__)


def run_cycle(
    rt: Runtime,
    jobs: Sequence[str],
    run: Callable[[str], JobResult] | None = None,
    stopped: Callable[[], bool] = lambda: False,
) -> list[JobResult]:
    """Run ``jobs`` once, in order, as one cycle; stop early when ``stopped()`` says so."""
    execute = run or (lambda job: run_job(rt, job))
    rt.begin_cycle(whole_pass=True)
    results: list[JobResult] = []
    try:
        for job in jobs:
            if stopped():
                break
            result = execute(job)
            results.append(result)
            peak = _peak_rss_mb()
            release_free_memory()  # what the job freed, before the next job allocates
            _log.info(
                "cycle_job_finished",
                job=job,
                ok=result.ok,
                seconds=round(result.seconds, 3),
                peak_rss_mb=peak,
                rss_mb=resident_mb(),
            )
        if not stopped() and all(r.ok and not r.interrupted for r in results):
            _settle(rt, {r.job: r.counts for r in results})
    finally:
        rt.end_pass()
    return results


def _settle(rt: Runtime, counts: Mapping[str, Mapping[str, int]]) -> None:
    """Record the cycle as settled when a rerun would change nothing; a failure only
    costs the next cycle a full run."""
    try:
        rt.settle(counts)
    except Exception as exc:  # the cycle's work is committed; only the shortcut is lost
        _log.warning("cycle_settle_failed", error=f"{type(exc).__name__}: {exc}")


def _peak_rss_mb() -> int:
    """The process's resident-memory high-water mark so far, in MiB (Linux counts KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
