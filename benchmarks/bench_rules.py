"""Benchmark: the shipped rules over 50,000 accounts and 1,000,000 responses.

Synthetic, seeded data built directly as typed facts (no CSV parsing, no metrics
computation: only rule evaluation is timed). Two figures:

- ``shipped``: the rules as shipped (response rules look at responses within their
  ``max_age``; responses spread over a year, a third of them counted);
- ``worst_case``: every response counted and recent, so every response rule
  evaluates every one of the 1,000,000 responses.

Prints its figures; the last line is JSON. Target: shipped under 5 s on 2 cores.

``--commands`` times the real commands instead, as subprocesses, on a generated
plain-file CRM folder (50,000 accounts, 500,000 contacts, 1,000,000 responses by
default; ``--scale`` shrinks it): ``ax-agent metrics --crm-dir`` and ``ax-agent rules
test --crm-dir`` (the real alert pipeline on an empty state). Target: rules test at most
twice the metrics time.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import get_args

from agent.config.settings import SlackSettings
from agent.core.document import AccountMetrics, HealthStatus, MetricsDocument, PortfolioMetrics
from agent.core.models import Account, Contact, Response, Tier
from agent.rules.evaluate import evaluate
from agent.rules.facts import ResponseFacts, build_inputs
from agent.rules.loader import load_rules

ACCOUNTS = 50_000
RESPONSES = 1_000_000
SEED = 20_260_601
AS_OF = datetime(2026, 6, 1, tzinfo=UTC)
TIERS: tuple[Tier, ...] = ("executive", "management", "frontline", "unknown")
STATUSES: tuple[HealthStatus, ...] = get_args(HealthStatus)


def _metrics(rng: random.Random, i: int) -> AccountMetrics:
    respondents = rng.choice((0, 0, 1, 2, 3, 5, 8))
    nps = None if respondents == 0 else rng.uniform(-100, 100)
    status: HealthStatus = "no_feedback" if respondents == 0 else rng.choice(STATUSES[1:])
    return AccountMetrics(
        id=f"A{i:06d}",
        name=f"Account {i}",
        revenue=round(rng.paretovariate(1.2) * 10_000, 2),
        contacts=rng.randint(1, 12),
        respondents=respondents,
        promoters=respondents // 2,
        passives=0,
        detractors=respondents - respondents // 2,
        nps=nps,
        nps_strict=nps,
        contact_coverage=rng.random(),
        tiers_covered=["frontline"] if respondents else [],
        tier_coverage=1 / 3 if respondents else 0.0,
        tier_nps={"frontline": nps, "executive": -nps} if nps is not None else {},
        tier_misaligned=rng.random() < 0.05,
        last_response_at=AS_OF if respondents else None,
        recency_score=100.0 if respondents else None,
        health_score=rng.uniform(0, 100) if respondents else None,
        health_status=status,
        at_risk=status == "at_risk",
        open_detractors=0,
        overdue_detractors=0,
        upsell_candidate=rng.random() < 0.02,
    )


def _document(rng: random.Random) -> tuple[MetricsDocument, list[Account]]:
    metrics = sorted((_metrics(rng, i) for i in range(ACCOUNTS)), key=lambda m: (-m.revenue, m.id))
    total = sum(m.revenue for m in metrics)
    with_feedback = [m for m in metrics if m.respondents]
    covered = sum(m.revenue for m in with_feedback)
    portfolio = PortfolioMetrics(
        accounts=ACCOUNTS,
        accounts_with_feedback=len(with_feedback),
        account_coverage=len(with_feedback) / ACCOUNTS,
        total_revenue=total,
        covered_revenue=covered,
        revenue_coverage=covered / total,
        contacts=ACCOUNTS * 6,
        responded_contacts=len(with_feedback) * 2,
        response_rate=0.2,
        nps=10.0,
        nps_strict=-30.0,
        revenue_weighted_nps=12.0,
        full_tier_coverage_accounts=100,
        at_risk_accounts=sum(m.at_risk for m in metrics),
        at_risk_revenue=sum(m.revenue for m in metrics if m.at_risk),
        detractors=RESPONSES // 4,
        detractors_closed_in_sla=RESPONSES // 10,
        closed_loop_rate=0.4,
    )
    document = MetricsDocument(AS_OF, portfolio, metrics, [], [], [])
    entities = [
        Account(m.id, m.name, revenue=m.revenue, owner_email=f"owner{m.id}@x.example")
        for m in metrics
    ]
    return document, entities


def _responses(rng: random.Random, entities: list[Account]) -> list[ResponseFacts]:
    out = []
    for i in range(RESPONSES):
        account = entities[rng.randrange(ACCOUNTS)]
        contact = Contact(f"C{i}", account.id, f"p{i}@x.example", f"Person {i}", "Manager")
        submitted = AS_OF - timedelta(seconds=rng.randrange(365 * 86_400))
        response = Response(
            f"R{i:07d}",
            contact.email,
            rng.randint(0, 10),
            submitted,
            comment="Support was slow to answer our tickets." if i % 3 else None,
            loop_closed_at=submitted + timedelta(hours=20) if i % 5 == 0 else None,
            source="responses.csv",
        )
        out.append(
            ResponseFacts(response, account, contact, rng.choice(TIERS), rng.random() < 0.35)
        )
    return out


def _timed(rules, inputs) -> tuple[float, int]:  # type: ignore[no-untyped-def]
    start = time.perf_counter()
    result = evaluate(rules, inputs)
    return time.perf_counter() - start, len(result.matches)


REPO = Path(__file__).resolve().parents[1]
COMMAND_RATIO_TARGET = 2.0


def _run(*args: str, cwd: Path) -> float:
    """Wall time of one real ``ax-agent`` command (output discarded); fails loudly."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AX_")}
    env["AX_LOG__LEVEL"] = "warning"
    started = time.perf_counter()
    result = subprocess.run(  # noqa: S603  # our own CLI
        [sys.executable, "-c", "from agent.cli import main; main()", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"ax-agent {' '.join(args)} exited {result.returncode}: {result.stderr}")
    return seconds


def commands(scale: float) -> None:
    from benchmarks.generate import AS_OF as DATA_AS_OF  # noqa: PLC0415  # only this mode
    from benchmarks.generate import generate, write_crm_folder  # noqa: PLC0415

    sizes = [max(1, round(n * scale)) for n in (50_000, 500_000, 1_000_000)]
    as_of = DATA_AS_OF.isoformat().replace("+00:00", "Z")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        folder = write_crm_folder(work / "crm", generate(*sizes))
        metrics = _run("metrics", "--crm-dir", str(folder), "--as-of", as_of, cwd=work)
        rules = _run(
            "rules", "test", "--crm-dir", str(folder), "--as-of", as_of,
            "--rules", str(REPO / "rules"), cwd=work,
        )  # fmt: skip
    ratio = rules / metrics
    print(f"accounts: {sizes[0]:,}, contacts: {sizes[1]:,}, responses: {sizes[2]:,}")
    print(f"ax-agent metrics --crm-dir:    {metrics:.1f} s")
    print(f"ax-agent rules test --crm-dir: {rules:.1f} s ({ratio:.2f}x metrics, target <= 2x)")
    print(
        json.dumps(
            {
                "benchmark": "rules_commands",
                "accounts": sizes[0],
                "contacts": sizes[1],
                "responses": sizes[2],
                "metrics_seconds": round(metrics, 2),
                "rules_test_seconds": round(rules, 2),
                "ratio": round(ratio, 2),
                "target_ratio": COMMAND_RATIO_TARGET,
                "ok": ratio <= COMMAND_RATIO_TARGET,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="Time rule evaluation, or the real commands.")
    parser.add_argument("--commands", action="store_true", help="time metrics vs rules test")
    parser.add_argument("--scale", type=float, default=1.0, help="with --commands: data size")
    args = parser.parse_args()
    if args.commands:
        commands(args.scale)
        return
    rng = random.Random(SEED)
    slack = SlackSettings()
    rules = load_rules(
        Path(__file__).resolve().parents[1] / "rules",
        channels=set(slack.channels),
        routes=slack.routes,
    )
    build = time.perf_counter()
    document, entities = _document(rng)
    facts = _responses(rng, entities)
    inputs = build_inputs(document, entities, facts)
    built = time.perf_counter() - build
    gc.collect()
    shipped, shipped_matches = _timed(rules.enabled(), inputs)
    recent = [
        replace(
            f,
            counted=True,
            response=replace(f.response, submitted_at=AS_OF - timedelta(hours=i % 100)),
        )
        for i, f in enumerate(facts)
    ]
    worst, worst_matches = _timed(rules.enabled(), replace(inputs, responses=recent))
    print(f"rules: {len(rules.enabled())}, accounts: {ACCOUNTS:,}, responses: {RESPONSES:,}")
    print(f"synthetic data built in {built:.1f} s (not timed below)")
    print(f"shipped rules:   {shipped:.2f} s evaluation, {shipped_matches:,} matches")
    print(f"worst case:      {worst:.2f} s evaluation, {worst_matches:,} matches")
    print(
        json.dumps(
            {
                "benchmark": "rules",
                "accounts": ACCOUNTS,
                "responses": RESPONSES,
                "rules": len(rules.enabled()),
                "evaluation_seconds": round(shipped, 3),
                "matches": shipped_matches,
                "worst_case_seconds": round(worst, 3),
                "worst_case_matches": worst_matches,
                "target_seconds": 5.0,
            }
        )
    )


if __name__ == "__main__":
    main()
