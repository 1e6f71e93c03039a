"""Benchmark: what writing the figure history adds to a cycle of the running agent.

One generated plain-file CRM (default 50,000 accounts, 500,000 contacts, 1,000,000
responses) with its answers shifted so they end now (a cycle computes as of now, so
the figures are live). One agent process, as ``ax-agent run`` keeps one, runs real
cycles (every job, as ``run --once`` does) one after the other:

1. the first cycle ingests every response and writes every field (every account gets
   its first history row);
2. the next one computes every figure afresh (the figures are reset first, as after a
   restart), so history compares every account (the most history ever costs in a
   steady cycle);
3. then ``--cycles`` - 1 cycles, each after ``--answers`` new answers arrived as the
   webhook stores them: only their accounts are recomputed, and history compares
   only those.

For each cycle it prints the cycle's time and the history's own time (``history_ms``,
what the writeback job logs in the cycles log) with the accounts compared and the
rows written. The target: history adds at most 5 % to any cycle, the first included.
Slack is off (alerts go to a silent console notifier). The first cycle dominates the
run time; ``--cycles 1`` stops after the every-account comparison.

    python -m benchmarks.bench_history                 # full size (50,000 accounts)
    python -m benchmarks.bench_history --scale 0.1     # 5,000 accounts

Prints its figures; the last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import random
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent.alerts.console import ConsoleNotifier
from agent.config.logging import configure_from_settings
from agent.config.settings import Settings
from agent.core.models import Response
from agent.service.process import AgentProcess
from agent.state.leader import leadership_for
from agent.state.store import StateStore
from benchmarks.generate import AS_OF, Portfolio, generate, write_crm_folder

TARGET = 0.05


def _portfolio(scale: float) -> Portfolio:
    """The generated portfolio, its answers shifted to end now."""
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
    print(f"generated {size[0]:,} accounts, {size[1]:,} contacts, {size[2]:,} responses")
    return portfolio._replace(responses=responses)


def _agent(work: Path, folder: Path) -> AgentProcess:
    settings = Settings.model_validate(
        {
            "crm": "files",
            "files": {"path": folder},
            "state_url": f"sqlite:///{work / 'state.db'}",
            "rules_dir": Path(__file__).resolve().parents[1] / "rules",
            "log": {"level": "warning"},
        }
    )
    configure_from_settings(settings)  # warnings and errors only
    leadership = leadership_for(settings.state_url)
    leadership.acquire(wait=False)
    store = StateStore.open(settings.state_url)
    silent = ConsoleNotifier(lambda line: None)
    return AgentProcess(settings, store, leadership, notifier=silent)


def _cycle(agent: AgentProcess) -> dict[str, float]:
    """One cycle of every job; its time and the writeback job's history counts."""
    start = time.perf_counter()
    results = {r.job: r for r in agent.run_once()}
    seconds = time.perf_counter() - start
    failed = [f"{r.job}: {r.error}" for r in results.values() if not r.ok]
    if failed:
        raise SystemExit(f"a job failed: {'; '.join(failed)}")
    counts = results["writeback"].counts
    return {
        "cycle_s": round(seconds, 3),
        "history_s": counts.get("history_ms", 0) / 1000,
        "compared": counts.get("history_compared", 0),
        "rows": counts.get("history_accounts", 0),
    }


def _answers(agent: AgentProcess, portfolio: Portfolio, count: int, round_: int) -> int:
    """``count`` new answers from random contacts, stored as the webhook stores them."""
    rng = random.Random(round_)
    now = datetime.now(UTC) - timedelta(minutes=5)
    chosen = rng.sample(portfolio.contacts, min(count, len(portfolio.contacts)))
    new = [
        Response(
            response_id=f"bench-{round_}-{i}",
            email=c.email,
            score=rng.randint(0, 10),
            submitted_at=now,
            source="webhook",
        )
        for i, c in enumerate(chosen)
    ]
    added = agent.store.add_responses(new).added
    agent.runtime.responses_added(added)
    return len({c.account_id for c in chosen})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="1.0 = 50,000 accounts")
    parser.add_argument(
        "--cycles",
        type=int,
        default=3,
        help="cycles after the first: the every-account comparison, then incremental ones",
    )
    parser.add_argument(
        "--answers",
        type=int,
        default=None,
        help="new answers before each incremental cycle (default: 1 per 100 accounts)",
    )
    args = parser.parse_args()
    portfolio = _portfolio(args.scale)
    answers = args.answers if args.answers is not None else max(1, len(portfolio.accounts) // 100)
    with tempfile.TemporaryDirectory(prefix="ax-bench-history-") as tmp:
        work = Path(tmp)
        folder = write_crm_folder(work / "crm", portfolio)
        agent = _agent(work, folder)
        try:
            first = _cycle(agent)
            first["share"] = round(first["history_s"] / first["cycle_s"], 4)
            print(
                "first cycle (ingests every response, writes every field): "
                f"{first['cycle_s']:.1f} s, history {first['history_s']:.2f} s = "
                f"{first['share']:.2%} ({first['rows']:,} account rows)"
            )
            steady: list[dict[str, float]] = []
            for n in range(max(1, args.cycles)):
                touched = _answers(agent, portfolio, answers, n) if n else 0
                if n == 0 and agent.runtime.figures is not None:
                    agent.runtime.figures.reset()  # every figure afresh: every account compared
                figures = _cycle(agent)
                figures["answers"] = answers if n else 0
                figures["share"] = round(figures["history_s"] / figures["cycle_s"], 4)
                steady.append(figures)
                kind = (
                    "every account compared"
                    if n == 0
                    else f"{answers:,} new answers at {touched:,} accounts"
                )
                print(
                    f"cycle {n + 2} ({kind}): {figures['cycle_s']:.2f} s, history "
                    f"{figures['history_s']:.3f} s = {figures['share']:.2%} "
                    f"({figures['compared']:,} compared, {figures['rows']:,} rows written)"
                )
        finally:
            agent.store.close()
            agent.leadership.release()
    worst = max(f["share"] for f in [first, *steady])
    verdict = "ok" if worst <= TARGET else "OVER TARGET"
    print(f"history adds at most {worst:.2%} to a cycle (target <= {TARGET:.0%}): {verdict}")
    print(
        json.dumps(
            {
                "accounts": len(portfolio.accounts),
                "first_cycle_s": first["cycle_s"],
                "first_history_s": first["history_s"],
                "first_share": first["share"],
                "steady": steady,
                "worst_share": worst,
            }
        )
    )


if __name__ == "__main__":
    main()
