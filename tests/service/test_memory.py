"""Between a cycle's jobs, the memory a job freed goes back to the system."""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from agent.service import memory


def test_resident_memory_is_read_from_the_process() -> None:
    now = memory.resident_mb()
    if now is None:
        pytest.skip("this system has no /proc/self/statm")
    assert now > 0


def test_freed_blocks_in_the_middle_of_the_heap_go_back_to_the_system() -> None:
    if memory._TRIM is None:
        pytest.skip("this C library has no malloc_trim")
    # In a fresh interpreter: 300 MB of 1,000-byte blocks (the C allocator's, not
    # Python's small-object arenas), every twentieth kept, so the free space lies between
    # live blocks, where freeing alone returns nothing to the system.
    script = textwrap.dedent(
        """
        from agent.service.memory import release_free_memory, resident_mb
        blocks = [bytes(1000) for _ in range(300_000)]
        kept = blocks[::20]
        del blocks
        before = resident_mb()
        assert release_free_memory()
        print(before, resident_mb(), len(kept))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    ).stdout
    before, after, _ = (int(n) for n in out.split())
    assert before - after > 150  # MiB: most of the 285 MB freed between the kept blocks


def test_without_malloc_trim_nothing_is_done(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memory, "_TRIM", None)
    assert memory.release_free_memory() is False


def test_a_cycle_gives_freed_memory_back_after_each_job(monkeypatch: pytest.MonkeyPatch) -> None:
    from structlog.testing import capture_logs

    from agent.service import cycle
    from agent.service.runner import JobResult

    released: list[str] = []
    ran: list[str] = []

    class Runtime:
        def begin_cycle(self, *, whole_pass: bool) -> None: ...
        def end_pass(self) -> None: ...
        def settle(self, counts: object) -> None: ...

    def run(job: str) -> JobResult:
        ran.append(job)
        return JobResult(job, True, 0.1, {})

    monkeypatch.setattr(cycle, "release_free_memory", lambda: released.append(ran[-1]) or True)
    with capture_logs() as logs:
        cycle.run_cycle(Runtime(), ["tasks", "writeback"], run=run)  # type: ignore[arg-type]
    assert released == ["tasks", "writeback"]
    finished = [e for e in logs if e["event"] == "cycle_job_finished"]
    assert [e["job"] for e in finished] == ["tasks", "writeback"]
    assert all(e["rss_mb"] is None or e["rss_mb"] > 0 for e in finished)


@pytest.mark.parametrize("fails", [False, True])
def test_a_job_runs_with_the_collector_paused_and_it_runs_again_after(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fails: bool
) -> None:
    """A full collector pass over what a job holds at 50,000 accounts held every thread
    for up to 0.8 s: the job runs with the collector paused, and whatever its outcome
    the collector is on again after it, and finds the garbage cycles the job left."""
    import weakref

    from agent.service import jobs
    from agent.service.runner import run_job
    from agent.state.store import StateStore

    class Node:
        other: object = None

    during: list[bool] = []
    left: list[weakref.ref[Node]] = []

    def job(_rt: object) -> dict[str, int]:
        during.append(gc.isenabled())
        node = Node()
        node.other = node  # a reference cycle: only the collector frees it
        left.append(weakref.ref(node))
        del node
        if fails:
            raise RuntimeError("the job failed")
        return {}

    monkeypatch.setitem(jobs.JOBS, "alerts", job)
    assert gc.isenabled()
    with StateStore.open(f"sqlite:///{tmp_path / 'state.db'}") as store:
        result = run_job(SimpleNamespace(store=store), "alerts")  # type: ignore[arg-type]
    assert result.ok is not fails
    assert during == [False]
    assert gc.isenabled()
    gc.collect()
    assert left[0]() is None
