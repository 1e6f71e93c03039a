"""The synthetic generator and the compute and history benchmark scripts (run tiny, never timed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from agent.core.compute import compute_document
from agent.sources.plainfiles import read_crm_folder
from benchmarks.generate import AS_OF, generate, write_crm_folder

ROOT = Path(__file__).resolve().parent.parent


def test_generator_is_deterministic_and_sized() -> None:
    first = generate(20, 200, 500, seed=3)
    again = generate(20, 200, 500, seed=3)
    other = generate(20, 200, 500, seed=4)
    assert first == again
    assert first != other
    accounts, contacts, responses = first
    assert (len(accounts), len(contacts), len(responses)) == (20, 200, 500)
    assert len({r.response_id for r in responses}) == 500
    assert all(a.revenue > 0 for a in accounts)


def test_generated_portfolio_exercises_every_matching_path() -> None:
    document = compute_document(*generate(2_000, 20_000, 20_000, seed=1), as_of=AS_OF)
    reasons = {u.reason for u in document.unmatched}
    assert reasons == {"no_match", "ambiguous_domain", "free_mail_domain"}
    tiers = {f.tier for f in document.contacts}
    assert tiers == {"executive", "management", "frontline", "unknown"}
    assert 0 < document.portfolio.account_coverage <= 1  # type: ignore[operator]
    assert document.portfolio.detractors_closed_in_sla > 0
    assert any(a.upsell_candidate for a in document.accounts)


def test_written_folder_reads_back_to_the_same_figures(tmp_path: Path) -> None:
    portfolio = generate(30, 300, 600, seed=5)
    folder = write_crm_folder(tmp_path, portfolio)
    crm = read_crm_folder(folder, AS_OF)
    assert crm.rejected == []
    from_files = compute_document(crm.accounts, crm.contacts, crm.responses, as_of=AS_OF)
    in_memory = compute_document(*portfolio, as_of=AS_OF)
    assert from_files.to_json_obj() == in_memory.to_json_obj()


def _last_json(module: str, *args: str) -> dict[str, Any]:
    """Run a benchmark at a tiny size; its last line, read as JSON."""
    result = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    figures: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


@pytest.mark.slow
def test_benchmark_script_prints_json_last(tmp_path: Path) -> None:
    figures = _last_json("benchmarks.bench_compute", "--scale", "0.002", "--files")
    assert (figures["accounts"], figures["contacts"], figures["responses"]) == (100, 1000, 2000)
    assert figures["compute_seconds"] >= 0
    assert figures["peak_rss_mb"] > 0
    assert figures["read_files_seconds"] >= 0
    assert figures["peak_rss_with_files_mb"] >= figures["peak_rss_mb"]
    assert figures["ok"] is True


@pytest.mark.slow
def test_history_benchmark_runs_real_cycles_and_compares_fewer_accounts_later() -> None:
    figures = _last_json("benchmarks.bench_history", "--scale", "0.002", "--cycles", "2")
    assert figures["accounts"] == 100
    every, incremental = figures["steady"]
    assert every["compared"] == 100  # every figure computed afresh
    assert incremental["answers"] == 1
    assert 1 <= incremental["compared"] < 100
    assert 0 <= figures["worst_share"] < 1
    assert 0 <= figures["first_share"] <= figures["worst_share"]  # the first cycle counts too
