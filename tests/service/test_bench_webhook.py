"""The webhook benchmark still runs (tiny, never timed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_webhook_benchmark_measures_the_agent_during_its_second_cycle() -> None:
    """The agent runs as a subprocess; the CRM change to every account makes its
    second cycle recompute every account, and the rounds run while it does."""
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench_webhook.py"),
            "--rounds",
            "3",
            "--accounts",
            "5",
            "--during-cycle",
            "--cycle-every",
            "8",
            "--round-every",
            "0.05",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["rounds"] >= 3
    assert 0 < figures["p50_ms"] <= figures["p95_ms"] <= figures["p99_ms"] <= figures["max_ms"]
    assert "every account's revenue changed in the CRM (5)" in result.stdout
    assert "  crm_sync: " in result.stdout
    assert '"accounts_changed": 5' in result.stdout
    assert "figures refreshed: full=True, 5 accounts recomputed" in result.stdout


@pytest.mark.slow
def test_the_burst_mode_stores_and_posts_every_answer_and_prints_the_bound() -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench_webhook.py"),
            "--burst",
            "12",
            "--concurrency",
            "4",
            "--post-per-second",
            "5",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["accepted"] == figures["stored"] == figures["alerts_posted"] == 12
    assert figures["rate_limit_bound_p99_s"] >= 0
    assert "p99 above that bound" in result.stdout


def test_the_bound_replays_the_agents_token_bucket() -> None:
    from benchmarks.bench_webhook import forced_posts  # the fakes' path set-up

    # 1 per second: a burst of three recorded at 0 goes out at 0, 1 and 2.
    assert forced_posts([0.0, 0.0, 0.0, 5.0], 1.0) == [0.0, 1.0, 2.0, 5.0]
    # 2 per second: two at once, then one every half second.
    assert forced_posts([0.0, 0.0, 0.0, 0.2], 2.0) == [0.0, 0.0, 0.5, 1.0]


def test_the_bound_is_computed_channel_by_channel() -> None:
    from benchmarks.bench_webhook import achieved_rate, forced_by_channel

    recorded = {"a1": 0.0, "a2": 0.0, "b1": 0.0, "b2": 0.0}
    channels = {"a1": "CA", "a2": "CA", "b1": "CB", "b2": "CB"}
    # One a second per channel: each channel's second message waits one second, not
    # three as it would behind the other channel's.
    forced = forced_by_channel(recorded, channels, 1.0)
    assert forced == {"a1": 0.0, "a2": 1.0, "b1": 0.0, "b2": 1.0}
    assert achieved_rate([0.0, 0.5, 1.0]) == 2.0
