"""Time the full compute of one cycle on a synthetic portfolio.

    python -m benchmarks.bench_compute                 # 50,000 / 500,000 / 1,000,000
    python -m benchmarks.bench_compute --scale 0.01    # 1 % of that, for a quick look
    python -m benchmarks.bench_compute --files         # also write and read a CRM folder

Prints the figures; the last line is JSON. ``compute_seconds`` is the wall time of
``compute_document`` (match, count, per-account, portfolio, drivers, contact figures);
``peak_rss_mb`` is the process's peak resident memory up to then (inputs included);
with ``--files``, ``read_files_seconds`` times ``read_crm_folder`` on the same portfolio
written as CSV, and ``peak_rss_with_files_mb`` is the peak after that.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import resource
import sys
import tempfile
import time
from pathlib import Path

import structlog

from agent.core.compute import compute_document
from agent.sources.plainfiles import read_crm_folder
from benchmarks.generate import AS_OF, Portfolio, generate, write_crm_folder

TARGET_SECONDS = 20.0
TARGET_RSS_MB = 2048.0


def _peak_rss_mb() -> float:
    """Peak resident set size of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Time one compute cycle.")
    parser.add_argument("--accounts", type=int, default=50_000)
    parser.add_argument("--contacts", type=int, default=500_000)
    parser.add_argument("--responses", type=int, default=1_000_000)
    parser.add_argument("--scale", type=float, default=1.0, help="multiply all three sizes")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--files", action="store_true", help="also time reading a CRM folder")
    return parser.parse_args()


def main() -> None:
    args = _args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    sizes = [max(1, round(n * args.scale)) for n in (args.accounts, args.contacts, args.responses)]
    started = time.perf_counter()
    portfolio = generate(*sizes, seed=args.seed)
    generate_seconds = time.perf_counter() - started
    print(
        f"generated {sizes[0]:,} accounts, {sizes[1]:,} contacts, {sizes[2]:,} responses"
        f" in {generate_seconds:.1f} s"
    )
    gc.collect()
    started = time.perf_counter()
    document = compute_document(
        portfolio.accounts, portfolio.contacts, portfolio.responses, as_of=AS_OF
    )
    compute_seconds = time.perf_counter() - started
    peak = _peak_rss_mb()
    p = document.portfolio
    print(
        f"compute: {compute_seconds:.2f} s wall, peak RSS {peak:.0f} MB"
        f" ({p.accounts_with_feedback:,} accounts with feedback, {p.responded_contacts:,}"
        f" responding contacts, {len(document.unmatched):,} unmatched)"
    )
    result: dict[str, object] = {
        "accounts": sizes[0],
        "contacts": sizes[1],
        "responses": sizes[2],
        "generate_seconds": round(generate_seconds, 2),
        "compute_seconds": round(compute_seconds, 2),
        "peak_rss_mb": round(peak, 1),
        "target_seconds": TARGET_SECONDS,
        "target_rss_mb": TARGET_RSS_MB,
    }
    if args.files:
        result["read_files_seconds"] = round(_time_files(portfolio), 2)
        result["peak_rss_with_files_mb"] = round(_peak_rss_mb(), 1)
        print(f"reading the CRM folder: {result['read_files_seconds']} s")
    result["ok"] = compute_seconds < TARGET_SECONDS and peak < TARGET_RSS_MB
    print(json.dumps(result))
    sys.exit(0)


def _time_files(portfolio: Portfolio) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_crm_folder(Path(tmp), portfolio)
        started = time.perf_counter()
        read_crm_folder(folder, AS_OF)
        return time.perf_counter() - started


if __name__ == "__main__":
    main()
