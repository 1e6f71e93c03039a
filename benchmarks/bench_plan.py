"""Benchmark: ``ax-agent plan coverage`` against ``ax-agent metrics`` on the same folder.

Both run as the real commands, as subprocesses, on one generated plain-file CRM
(default 50,000 accounts and 500,000 contacts) at the generator's ``as_of``, so the
answers are live: inside the window and the fatigue period. Every generated account
would otherwise have an answer, so a share of them (``--silent``, default 70 %) has its
answers removed: revenue coverage is partial and the plan has real work. The target is
a plan in at most twice the ``metrics`` time. Each command runs ``--repeat`` times and
the best time is kept, so a busy moment of the machine does not count.

    python -m benchmarks.bench_plan                  # full size
    python -m benchmarks.bench_plan --scale 0.02     # a quick look
    python -m benchmarks.bench_plan --folder DIR     # write once, then reuse the folder

Prints its figures; the last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.generate import AS_OF, Portfolio, generate, write_crm_folder

TARGET_RATIO = 2.0


def _cli() -> list[str]:
    """The installed console script beside this interpreter, else the CLI module."""
    script = Path(sys.executable).with_name("ax-agent")
    fallback = [sys.executable, "-c", "from agent.cli import main; main()"]
    return [str(script)] if script.exists() else fallback


def _silence(portfolio: Portfolio, share: float, seed: int = 15) -> Portfolio:
    """Remove every answer that would match a ``share`` of the accounts (domain or hint)."""
    rng = random.Random(seed)
    silent = {i for i in range(len(portfolio.accounts)) if rng.random() < share}
    silent_ids = {portfolio.accounts[i].id for i in silent}
    silent_domains = {f"acct{i}.example" for i in silent}
    kept = [
        r
        for r in portfolio.responses
        if (r.email or "").lower().rpartition("@")[2] not in silent_domains
        and r.account_hint not in silent_ids
    ]
    return portfolio._replace(responses=kept)


def _write(folder: Path, scale: float, silent: float) -> None:
    size = (int(50_000 * scale), int(500_000 * scale), int(1_000_000 * scale))
    portfolio = _silence(generate(*size), silent)
    print(
        f"generated {size[0]:,} accounts, {size[1]:,} contacts; "
        f"{len(portfolio.responses):,} of {size[2]:,} responses kept "
        f"({silent:.0%} of the accounts silent)"
    )
    write_crm_folder(folder, portfolio)


def _timed(args: list[str], repeat: int) -> tuple[float, str]:
    best, out = float("inf"), ""
    env = {**os.environ, "AX_LOG__LEVEL": "warning"}
    for _ in range(repeat):
        start = time.perf_counter()
        done = subprocess.run(args, capture_output=True, text=True, check=False, env=env)  # noqa: S603  # our own CLI
        if done.returncode != 0:
            raise SystemExit(
                f"{' '.join(args[-6:])} exited {done.returncode}: {done.stderr[-2000:]}"
            )
        best = min(best, time.perf_counter() - start)
        out = done.stdout
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = 50k accounts")
    parser.add_argument("--folder", type=Path, help="a generated CRM folder (made if missing)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--silent", type=float, default=0.7, help="share of silent accounts")
    opts = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = opts.folder or Path(tmp) / "crm"
        if not (folder / "accounts.csv").exists():
            _write(folder, opts.scale, opts.silent)
        common = ["--crm-dir", str(folder), "--as-of", AS_OF.isoformat()]
        metrics_s, doc = _timed([*_cli(), "metrics", *common], opts.repeat)
        plan_args = [*_cli(), "plan", "coverage", *common, "--format", "json"]
        plan_s, plan = _timed(plan_args, opts.repeat)
    figures = json.loads(plan)
    portfolio = json.loads(doc)["portfolio"]
    ratio = plan_s / metrics_s
    contacts = sum(len(a["contacts"]) for a in figures["accounts"])
    print(f"accounts {portfolio['accounts']:,}, revenue coverage now {figures['coverage_now']:.3f}")
    print(f"metrics --crm-dir:       {metrics_s:6.2f} s")
    print(f"plan coverage --crm-dir: {plan_s:6.2f} s ({ratio:.2f}x; target <= {TARGET_RATIO}x)")
    print(
        f"plan: {len(figures['accounts']):,} accounts, {contacts:,} contacts, "
        f"{len(figures['tier_gaps'])} tier gaps; coverage planned "
        f"{figures['coverage_planned']:.3f}, expected {figures['coverage_expected']:.3f}"
    )
    summary = {
        "accounts": portfolio["accounts"],
        "metrics_s": round(metrics_s, 2),
        "plan_s": round(plan_s, 2),
        "ratio": round(ratio, 2),
        "target_ratio": TARGET_RATIO,
        "planned_accounts": len(figures["accounts"]),
        "planned_contacts": contacts,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
