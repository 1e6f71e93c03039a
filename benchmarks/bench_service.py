"""Benchmark: the running agent (``ax-agent run``) at rest, with nothing changing.

``bench_cycle`` measures ``run --once`` processes; this measures the long-running
service the way it runs in production: the real command as a subprocess, on the wall
clock, every job on its own cadence. It generates a plain-file CRM
(``benchmarks.generate``: 10 contacts and 20 answers per account) whose answers end at
the moment of the run, so they are live, and configures the shipped rules, a fresh
SQLite state, JSON logs, no Slack (alerts go to the console notifier, discarded).

The cadences are the shipped defaults (alerts and survey ingestion every minute, tasks
and escalation every five, the outbox every 30 s, the coverage plan every six hours)
except the CRM sync and write-back, every ``--cycle-minutes`` (default 5, shipped 15),
so that the window sees new cycles start: each CRM sync starts a cycle at a new
instant, and its figures are brought to it.

Once every job has run once (the first cycle: everything new), it watches the agent for
``--minutes`` (default 10) with nothing changing and prints the process's CPU time over
that window (per minute: the share of one core the idle agent takes), the peak RSS, and
per job the runs, how many were skipped, and their total and longest seconds (from the
agent's own ``job_done`` log lines). The last line is JSON.

With ``--change``, after the window it changes 1 % of the accounts (their revenue) and
appends 1,000 answers dated now (``bench_cycle``'s change), then waits until the CRM
sync that reads the change and every job after it have run, and prints those jobs'
seconds and counts: what the running agent spends on a cycle after a change, its
figures refreshed in parts and its write-back comparing only what moved.

    python -m benchmarks.bench_service                      # 50,000 accounts
    python -m benchmarks.bench_service --accounts 2000 --minutes 3
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from agent.service.jobs import JOBS
from benchmarks import bench_cycle

__all__ = ["main"]

#: Every job the agent runs (the first cycle is over once each has run once).
_JOBS = tuple(JOBS)
_RULES = Path(__file__).resolve().parent.parent / "rules"


def _agent() -> str:
    found = shutil.which("ax-agent", path=str(Path(sys.executable).parent))
    if found is None:
        raise SystemExit("ax-agent is not installed next to this Python (pip install -e .)")
    return found


def _generate(folder: str, accounts: int, as_of: str) -> None:
    """In a fresh interpreter: the portfolio with its answers ending at ``as_of``."""
    import benchmarks.generate as generator  # noqa: PLC0415  # the child's own import

    generator.AS_OF = datetime.fromisoformat(as_of)
    portfolio = generator.generate(accounts, accounts * 10, accounts * 20, seed=7)
    generator.write_crm_folder(Path(folder), portfolio)


def _config(root: Path, folder: Path, cycle_minutes: float) -> Path:
    every = f"{cycle_minutes:g}m"
    path = root / "ax-agent.yaml"
    path.write_text(
        f"crm: files\n"
        f"files:\n  path: {json.dumps(str(folder))}\n"
        f"state_url: {json.dumps('sqlite:///' + str(root / 'state.db'))}\n"
        f"rules_dir: {json.dumps(str(_RULES))}\n"
        f"server:\n  port: 0\n"
        f"log:\n  level: info\n  format: json\n"
        f"schedule:\n"
        f"  crm_sync: {{every: {every}}}\n"
        f"  writeback: {{every: {every}}}\n",
        encoding="utf-8",
    )
    return path


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a running process (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rpartition(")")[2].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def _events(log: Path, offset: int) -> tuple[list[dict[str, Any]], int]:
    """The whole JSON lines written to ``log`` after ``offset``, and the new offset."""
    with log.open("rb") as handle:
        handle.seek(offset)
        data = handle.read()
    end = data.rfind(b"\n") + 1
    out = []
    for line in data[:end].splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out, offset + end


def _summary(done: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    jobs: dict[str, dict[str, Any]] = {}
    for event in done:
        job = jobs.setdefault(
            event["job"], {"runs": 0, "skipped": 0, "seconds": 0.0, "longest": 0.0}
        )
        job["runs"] += 1
        job["skipped"] += int(bool(event.get("unchanged")))
        job["seconds"] = round(job["seconds"] + event["seconds"], 2)
        job["longest"] = max(job["longest"], event["seconds"])
    return jobs


def run(
    accounts: int, minutes: float, cycle_minutes: float, root: Path, *, change: bool = False
) -> dict[str, Any]:
    folder = root / "crm"
    as_of = datetime.now(UTC).replace(microsecond=0)
    started = time.perf_counter()
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        pool.submit(_generate, str(folder), accounts, as_of.isoformat()).result()
    print(f"{accounts:,} accounts generated in {time.perf_counter() - started:.1f} s")
    config = _config(root, folder, cycle_minutes)
    log = root / "agent.log"
    command = [_agent(), "run", "--config", str(config)]
    with log.open("wb") as err:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err)  # noqa: S603
    usage = None
    changed = None
    try:
        first, offset, began = _first_cycle(proc, log)
        print(f"first cycle: {time.perf_counter() - began:.1f} s")
        for job, figures in _summary(first).items():
            print(f"  {job:<14} {figures['seconds']:8.2f} s")
        cpu_before, window_began = _cpu_seconds(proc.pid), time.perf_counter()
        steady: list[dict[str, Any]] = []
        while time.perf_counter() - window_began < minutes * 60:
            if proc.poll() is not None:
                raise SystemExit(f"the agent ended with status {proc.returncode}; see {log}")
            time.sleep(2)
            events, offset = _events(log, offset)
            steady += [e for e in events if e.get("event") == "job_done"]
        cpu = _cpu_seconds(proc.pid) - cpu_before
        window = time.perf_counter() - window_began
        changed = _changed_cycle(proc, log, offset, folder, accounts) if change else None
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            _, _, usage = os.wait4(proc.pid, 0)
    jobs = _summary(steady)
    per_minute = cpu / (window / 60)
    print(
        f"steady state over {window / 60:.1f} min, nothing changing: CPU {cpu:.1f} s "
        f"({per_minute:.1f} s per minute, {per_minute / 60:.0%} of one core)"
    )
    for job, figures in jobs.items():
        print(
            f"  {job:<14} {figures['runs']:3d} runs ({figures['skipped']} skipped), "
            f"{figures['seconds']:8.2f} s in all, longest {figures['longest']:.2f} s"
        )
    peak = None if usage is None else usage.ru_maxrss // 1024
    print(f"peak RSS {peak} MiB")
    if changed is not None:
        print(
            f"after 1 % of the accounts changed and {bench_cycle.NEW_RESPONSES:,} answers "
            f"arrived: {changed['job_seconds']:.1f} s of jobs until the cycle that read "
            f"the change had run every job (CPU {changed['cpu_seconds']:.1f} s)"
        )
        for job, figures in changed["jobs"].items():
            extra = " ".join(f"{k}={v}" for k, v in figures.items() if k != "seconds")
            print(f"  {job:<14} {figures['seconds']:8.2f} s  {extra}")
    return {
        "accounts": accounts,
        "first_cycle": _summary(first),
        "steady_minutes": round(window / 60, 2),
        "steady_cpu_seconds": round(cpu, 2),
        "steady_cpu_seconds_per_minute": round(per_minute, 2),
        "steady_jobs": jobs,
        "peak_rss_mb": peak,
        "after_change": changed,
    }


#: What the change's jobs count, as ``bench_cycle`` prints them.
_COUNTED = ("accounts_changed", "responses_new", "compared_records", "written", "rules")


def _changed_cycle(
    proc: subprocess.Popen[bytes], log: Path, offset: int, folder: Path, accounts: int
) -> dict[str, Any]:
    """Change 1 % of the accounts and add answers (``bench_cycle``'s change, dated now),
    then wait until the CRM sync that reads the change has run and every job after it
    once; returns each job's runs since the change (seconds summed, the largest count
    of any run), their total and the process's CPU time over that span."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        as_of = datetime.now(UTC)
        pool.submit(bench_cycle._change, folder, accounts, as_of).result()
    cpu_before = _cpu_seconds(proc.pid)
    runs: list[dict[str, Any]] = []
    synced = False
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"the agent ended with status {proc.returncode}; see {log}")
        time.sleep(1)
        events, offset = _events(log, offset)
        for event in events:
            if event.get("event") != "job_done":
                continue
            runs.append(event)
            synced = synced or (event["job"] == "crm_sync" and bool(event.get("accounts_changed")))
        after = set()
        if synced:
            first = next(
                i
                for i, e in enumerate(runs)
                if e["job"] == "crm_sync" and e.get("accounts_changed")
            )
            after = {e["job"] for e in runs[first:]}
        if synced and after >= set(_JOBS) - {"coverage_plan"}:
            break
    jobs: dict[str, dict[str, Any]] = {}
    for event in runs:
        job = jobs.setdefault(event["job"], {"seconds": 0.0, "runs": 0})
        job["seconds"] = round(job["seconds"] + event["seconds"], 2)
        job["runs"] += 1
        for key in _COUNTED:  # the largest of its runs (most are quiet)
            if key in event:
                job[key] = max(job.get(key, 0), event[key])
    return {
        "jobs": jobs,
        "job_seconds": round(sum(j["seconds"] for j in jobs.values()), 2),
        "cpu_seconds": round(_cpu_seconds(proc.pid) - cpu_before, 2),
    }


def _first_cycle(
    proc: subprocess.Popen[bytes], log: Path
) -> tuple[list[dict[str, Any]], int, float]:
    """Wait until every job has run once; returns their ``job_done`` lines, the log
    offset after them and when the wait began."""
    began = time.perf_counter()
    offset = 0
    done: list[dict[str, Any]] = []
    while {e["job"] for e in done} < set(_JOBS):
        if proc.poll() is not None:
            raise SystemExit(f"the agent ended with status {proc.returncode}; see {log}")
        time.sleep(1)
        events, offset = _events(log, offset)
        done += [e for e in events if e.get("event") == "job_done"]
        failed = [e for e in events if e.get("event") == "job_failed"]
        if failed:
            raise SystemExit(f"a job failed: {failed[0]}")
    return done, offset, began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=50_000)
    parser.add_argument("--minutes", type=float, default=10.0, help="the steady window")
    parser.add_argument("--cycle-minutes", type=float, default=5.0)
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    parser.add_argument(
        "--change",
        action="store_true",
        help="after the window, change 1 %% of the accounts and add answers, and measure "
        "the jobs until the cycle that reads the change has run",
    )
    args = parser.parse_args()
    if args.keep is not None:
        shutil.rmtree(args.keep, ignore_errors=True)
        args.keep.mkdir(parents=True)
        result = run(args.accounts, args.minutes, args.cycle_minutes, args.keep, change=args.change)
    else:
        with tempfile.TemporaryDirectory(prefix="ax-bench-service-") as tmp:
            result = run(
                args.accounts, args.minutes, args.cycle_minutes, Path(tmp), change=args.change
            )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
