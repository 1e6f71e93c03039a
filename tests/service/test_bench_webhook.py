"""The webhook benchmark still runs (tiny, never timed)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_webhook_benchmark_prints_json_last() -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench_webhook.py"),
            "--rounds",
            "3",
            "--accounts",
            "5",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert figures["rounds"] == 3
    assert 0 < figures["p50_ms"] <= figures["p95_ms"] <= figures["max_ms"]
