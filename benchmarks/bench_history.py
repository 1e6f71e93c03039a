"""Benchmark: what writing the figure history adds to a cycle (``ax-agent run --once``).

One generated plain-file CRM (default 50,000 accounts, 500,000 contacts, 1,000,000
responses) with its answers shifted so they end now (``run`` computes as of now, so
the figures are live). A first ``run --once`` with history on ingests every response and
writes every field; its state database is copied for the side with
``history.enabled: false``. Then the real command runs ``--repeat`` times on each,
alternating, and the median cycle of each is compared.
The target: history adds at most 5 % to a cycle. The difference of two medians is noisy
on a busy machine, so the history's own time, which the writeback job logs as
``history_ms`` in the cycles log, is printed too, as a share of the cycle. Slack is off
(the console notifier).

    python -m benchmarks.bench_history                 # full size
    python -m benchmarks.bench_history --scale 0.02    # a quick look

Prints its figures; the last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, text

from benchmarks.generate import AS_OF, generate, write_crm_folder

TARGET = 0.05


def _cli() -> list[str]:
    script = Path(sys.executable).with_name("ax-agent")
    fallback = [sys.executable, "-c", "from agent.cli import main; main()"]
    return [str(script)] if script.exists() else fallback


def _write(folder: Path, scale: float) -> None:
    size = (int(50_000 * scale), int(500_000 * scale), int(1_000_000 * scale))
    portfolio = generate(*size)
    shift = datetime.now(UTC) - AS_OF
    responses = [
        replace(
            r,
            submitted_at=r.submitted_at + shift,
            loop_closed_at=None if r.loop_closed_at is None else r.loop_closed_at + shift,
        )
        for r in portfolio.responses
    ]
    write_crm_folder(folder, portfolio._replace(responses=responses))
    print(f"generated {size[0]:,} accounts, {size[1]:,} contacts, {size[2]:,} responses")


def _config(work: Path, folder: Path, name: str, enabled: bool) -> Path:
    config = work / f"{name}.yaml"
    config.write_text(
        f"crm: files\nfiles:\n  path: {folder}\n"
        f"state_url: sqlite:///{work / (name + '.db')}\n"
        f"rules_dir: {Path(__file__).resolve().parents[1] / 'rules'}\n"
        f"history:\n  enabled: {'true' if enabled else 'false'}\n"
        "log:\n  level: warning\n",
        encoding="utf-8",
    )
    return config


def _run(config: Path) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AX_")}
    start = time.perf_counter()
    subprocess.run(  # noqa: S603  # our own CLI
        [*_cli(), "run", "--once", "--config", str(config)],
        capture_output=True,
        check=True,
        env=env,
        cwd=config.parent,
    )
    return time.perf_counter() - start


def _history_counts(database: Path) -> list[dict[str, int]]:
    engine = create_engine(f"sqlite:///{database}")
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT counts FROM cycles WHERE job = 'writeback' ORDER BY id")
        ).all()
    engine.dispose()
    return [json.loads(r[0]) if isinstance(r[0], str) else r[0] for r in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = 50,000 accounts")
    parser.add_argument("--repeat", type=int, default=3, help="timed cycles per side")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ax-bench-history-") as tmp:
        work = Path(tmp)
        folder = work / "crm"
        _write(folder, args.scale)
        on = _config(work, folder, "on", enabled=True)
        off = _config(work, folder, "off", enabled=False)
        first_on = _run(on)
        print(f"first cycle (ingests every response, writes every field): {first_on:.1f} s")
        # The other side starts from the same state: a copy of the database (no WAL left
        # once the agent has exited), so both sides then run the same steady cycle.
        shutil.copyfile(work / "on.db", work / "off.db")
        times: dict[str, list[float]] = {"off": [], "on": []}
        for _ in range(args.repeat):
            times["off"].append(_run(off))
            times["on"].append(_run(on))
        median_off = statistics.median(times["off"])
        median_on = statistics.median(times["on"])
        added = (median_on - median_off) / median_off
        counts = _history_counts(work / "on.db")
        rows = [c.get("history_accounts", 0) for c in counts]
        spent = [c.get("history_ms", 0) / 1000 for c in counts]
        steady = statistics.median(spent[1:]) if len(spent) > 1 else spent[0]
        share = steady / median_on
        print(
            f"cycle without history: median {median_off:.2f} s "
            f"({', '.join(f'{t:.2f}' for t in times['off'])})"
        )
        print(
            f"cycle with history:    median {median_on:.2f} s "
            f"({', '.join(f'{t:.2f}' for t in times['on'])})"
        )
        print(f"account rows written per cycle: {rows}")
        print(
            f"history's own time per cycle (cycles log): {', '.join(f'{t:.2f}' for t in spent)} s; "
            f"steady median {steady:.2f} s = {share:.1%} of a cycle"
        )
        verdict = "ok" if added <= TARGET else "OVER TARGET"
        print(f"history adds {added:+.1%} to a cycle (target <= {TARGET:.0%}): {verdict}")
        print(
            json.dumps(
                {
                    "accounts": int(50_000 * args.scale),
                    "first_cycle_s": round(first_on, 2),
                    "median_off_s": round(median_off, 3),
                    "median_on_s": round(median_on, 3),
                    "added": round(added, 4),
                    "rows_per_cycle": rows,
                    "history_s": spent,
                    "history_share": round(share, 4),
                }
            )
        )


if __name__ == "__main__":
    main()
