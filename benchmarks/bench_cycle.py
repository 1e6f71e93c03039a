"""Benchmark: the real ``ax-agent run --once``, cycle after cycle, at 10k and 50k accounts.

For each size it generates a plain-file CRM (``benchmarks.generate``: 10 contacts and
20 responses per account), writes a configuration (the folder, a fresh SQLite state,
JSON logs; alerts go to the console notifier, whose output is discarded), then runs
the command as a subprocess with ``--as-of`` at the generator's instant, so every
answer is live:

1. cycle 1: everything is new;
2. cycle 2: nothing changed (quiet: cycle 1 settled after its own writes);
3. cycle 3: quiet once more;
4. cycle 4: after 1 % of the accounts changed (their revenue) and 1,000 new responses.

Per cycle it prints the wall time, the CPU time (user + system: the fairer figure on
a loaded machine) and the peak RSS of the process, and per job the
seconds and the RSS high-water mark at the job's end (from the agent's own
``cycle_job_finished`` log lines) with the writes and alerts it counted; then the
10k -> 50k ratio of each cycle. The last line is JSON.

The ratio compares runs minutes apart, and a shared machine's speed per core moves by
a third within an hour: one run's ratio follows the machine as much as the agent.
``--rounds N`` runs every size N times, the sizes taking turns (10k, 50k, 10k, 50k …,
each round on a fresh copy of the same generated folders), and prints each round's
ratios and their median.

    python -m benchmarks.bench_cycle                  # 10k and 50k
    python -m benchmarks.bench_cycle --rounds 3       # the ratios of three rounds
    python -m benchmarks.bench_cycle --sizes 2000     # a quick look
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.generate import AS_OF, generate, write_crm_folder

__all__ = ["main"]

_TARGETS = {
    "cycle_1": (30.0, 1536),
    "cycle_2_quiet": (3.0, 1536),
    "cycle_3_quiet": (3.0, 1536),
    "cycle_4_change": (5.0, 1536),
}
NEW_RESPONSES = 1_000
_COUNTED = (
    "written",
    "alerts_recorded",
    "alerts_sent",
    "responses_new",
    "accounts_read",
    "accounts_changed",
)


def _agent() -> str:
    found = shutil.which("ax-agent", path=str(Path(sys.executable).parent))
    if found is None:
        raise SystemExit("ax-agent is not installed next to this Python (pip install -e .)")
    return found


def _config(root: Path, folder: Path) -> Path:
    path = root / "ax-agent.yaml"
    path.write_text(
        f"crm: files\n"
        f"files:\n  path: {json.dumps(str(folder))}\n"
        f"state_url: {json.dumps('sqlite:///' + str(root / 'state.db'))}\n"
        f"log:\n  level: info\n  format: json\n",
        encoding="utf-8",
    )
    return path


def _run_once(config: Path, log: Path) -> dict[str, Any]:
    """One ``run --once`` subprocess: wall time, peak RSS, per-job figures."""
    command = [_agent(), "run", "--once", "--as-of", AS_OF.isoformat(), "--config", str(config)]
    started = time.perf_counter()
    with log.open("w", encoding="utf-8") as err:
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err)  # noqa: S603
        _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - started
    jobs: dict[str, dict[str, Any]] = {}
    for line in log.read_text(encoding="utf-8").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") == "job_done":
            jobs.setdefault(event["job"], {}).update(
                {k: event[k] for k in _COUNTED if k in event}, seconds=event["seconds"]
            )
        elif event.get("event") == "cycle_job_finished":
            jobs.setdefault(event["job"], {})["peak_rss_mb"] = event["peak_rss_mb"]
        elif event.get("event") == "job_failed":
            jobs.setdefault(event["job"], {})["failed"] = event.get("error")
    return {
        "exit": os.waitstatus_to_exitcode(status),
        "seconds": round(seconds, 2),
        "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mb": usage.ru_maxrss // 1024,
        "jobs": jobs,
    }


def _change(folder: Path, accounts: int, as_of: datetime = AS_OF) -> None:
    """1 % of the accounts get a new revenue; 1,000 new answers arrive (in the two
    days before ``as_of``)."""
    path = folder / "accounts.csv"
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.reader(handle))
    step = 100
    for row in rows[1::step]:
        row[3] = str(round(float(row[3] or 0) * 1.1 + 1, 2))
    with path.open("w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)
    with (folder / "contacts.csv").open(encoding="utf-8", newline="") as handle:
        contacts = [r for r in csv.DictReader(handle) if r["email"]]
    with (folder / "responses.csv").open("a", encoding="utf-8", newline="") as handle:
        out = csv.writer(handle)
        for i in range(NEW_RESPONSES):
            contact = contacts[(i * 7919) % len(contacts)]
            submitted = as_of - timedelta(hours=1 + i % 48)
            out.writerow(
                [f"new-{i}", contact["email"], i % 11, submitted.isoformat(), "Support", "", "", ""]
            )
    print(f"  changed {len(rows[1::step])} of {accounts} accounts, added {NEW_RESPONSES} responses")


def _generate(folder: Path, accounts: int) -> None:
    write_crm_folder(folder, generate(accounts, accounts * 10, accounts * 20, seed=7))


def _in_child(fn: Callable[..., None], *args: object) -> None:
    """Run ``fn`` in a fresh interpreter: a child's peak RSS starts at its parent's peak
    (Linux keeps the high-water mark across fork and exec), so the cycles' figures would
    otherwise include the memory of generating or changing the portfolio here."""
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        pool.submit(fn, *args).result()


def run_size(accounts: int, root: Path, *, reuse: bool = False) -> dict[str, Any]:
    folder = root / "crm"
    started = time.perf_counter()
    if reuse and (folder / "responses.csv").exists():
        print(f"{accounts:,} accounts: the generated folder is reused")
    else:
        _in_child(_generate, folder, accounts)
        print(f"{accounts:,} accounts: generated in {time.perf_counter() - started:.1f} s")
    config = _config(root, folder)
    out: dict[str, Any] = {}
    for name, (target_s, target_mb) in _TARGETS.items():
        if name == "cycle_4_change":
            _in_child(_change, folder, accounts)
        result = out[name] = _run_once(config, root / f"{name}.log")
        print(
            f"  {name}: {result['seconds']:.1f} s (target ≤ {target_s:g} s; "
            f"CPU {result['cpu_seconds']:.1f} s), "
            f"peak RSS {result['peak_rss_mb']} MiB (target ≤ {target_mb}), exit {result['exit']}"
        )
        for job, figures in result["jobs"].items():
            extra = " ".join(f"{k}={v}" for k, v in figures.items() if k not in ("seconds",))
            print(f"    {job:<14} {figures.get('seconds', 0):7.2f} s  {extra}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--keep", type=Path, help="work in this folder and keep it")
    parser.add_argument(
        "--reuse",
        type=Path,
        help="a folder of generated CRM folders by size (SIZE/crm), copied instead of generated",
    )
    parser.add_argument(
        "--rounds", type=int, default=1, help="run every size this many times, taking turns"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ax-bench-cycle-") as tmp:
        work = args.keep if args.keep is not None else Path(tmp)
        rounds = [_round(args, work, n) for n in range(1, args.rounds + 1)]
    sizes = sorted(rounds[0])
    ratios: list[dict[str, float]] = []
    if len(sizes) >= 2:
        for n, results in enumerate(rounds, start=1):
            print(f"round {n}:" if len(rounds) > 1 else "ratios:")
            ratios.append(_ratios(results[sizes[0]], results[sizes[-1]], sizes))
    median: dict[str, float] = {}
    if len(ratios) > 1:
        for name in ratios[0]:
            median[name] = round(statistics.median(r[name] for r in ratios), 2)
        print("median over the rounds: " + ", ".join(f"{k} {v}x" for k, v in median.items()))
    print(json.dumps({"rounds": rounds, "ratios": ratios, "median": median}))


def _round(args: argparse.Namespace, work: Path, n: int) -> dict[int, dict[str, Any]]:
    """One round: every size once, in order, each on a fresh copy of its generated
    folder (the cycles write to the folder and change it)."""
    results: dict[int, dict[str, Any]] = {}
    for size in args.sizes:
        root = work / (str(size) if args.rounds == 1 else f"{size}-round{n}")
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        source = None if args.reuse is None else args.reuse / str(size) / "crm"
        if source is None or not source.is_dir():
            source = work / f"{size}-generated" / "crm"
            if not source.is_dir():
                started = time.perf_counter()
                _in_child(_generate, source, size)
                print(f"{size:,} accounts: generated in {time.perf_counter() - started:.1f} s")
        shutil.copytree(source, root / "crm")
        if args.rounds > 1 and size == args.sizes[0]:
            print(f"round {n} of {args.rounds}")
        results[size] = run_size(size, root, reuse=True)
    return results


def _ratios(small: dict[str, Any], large: dict[str, Any], sizes: list[int]) -> dict[str, float]:
    ratios: dict[str, float] = {}
    for name in _TARGETS:
        ratios[name] = round(large[name]["seconds"] / max(small[name]["seconds"], 1e-9), 2)
        cpu = round(large[name]["cpu_seconds"] / max(small[name]["cpu_seconds"], 1e-9), 2)
        ratios[f"{name}_cpu"] = cpu
        print(
            f"  {name}: {sizes[0]:,} -> {sizes[-1]:,} accounts took {ratios[name]}x the "
            f"wall time, {cpu}x the CPU time"
        )
    return ratios


if __name__ == "__main__":
    main()
