"""Size and build time of the HTML report (and the digest's PNG) for a portfolio.

    python -m benchmarks.bench_report                 # the 250-account demo portfolio
    python -m benchmarks.bench_report --accounts 50000 --contacts 500000 --responses 1000000

Prints the figures; the last line is JSON. ``build_seconds`` is the wall time of
``build_report`` on a computed document (charts, template, all of it); ``html_bytes``
the size of the written file, with each chart's inline SVG size beside it;
``png_seconds`` / ``png_bytes`` the digest's driver chart.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
import time
from pathlib import Path

import structlog

from agent.cli.demo_sample import DEMO_AS_OF, write_demo_folder
from agent.core.compute import compute_document
from agent.core.contract import MetricsConfig
from agent.core.document import MetricsDocument
from agent.core.models import Account
from agent.report import ReportOptions, build_report, drivers_png
from agent.report.html import render_charts
from agent.sources.plainfiles import read_crm_folder
from benchmarks.generate import AS_OF, generate


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Measure the portfolio report.")
    parser.add_argument("--accounts", type=int, default=0, help="0: the demo portfolio")
    parser.add_argument("--contacts", type=int, default=0)
    parser.add_argument("--responses", type=int, default=0)
    parser.add_argument("--seed", type=int, default=7)
    return parser.parse_args()


def _portfolio(args: argparse.Namespace) -> tuple[MetricsDocument, list[Account], str]:
    if args.accounts <= 0:
        with tempfile.TemporaryDirectory() as folder:
            write_demo_folder(Path(folder))
            data = read_crm_folder(Path(folder), DEMO_AS_OF)
        doc = compute_document(
            data.accounts, data.contacts, data.responses, as_of=DEMO_AS_OF, config=MetricsConfig()
        )
        return doc, data.accounts, "demo"
    accounts, contacts, responses = generate(
        args.accounts, args.contacts, args.responses, seed=args.seed
    )
    doc = compute_document(accounts, contacts, responses, as_of=AS_OF, config=MetricsConfig())
    return doc, accounts, "generated"


def main() -> None:
    args = _args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    doc, accounts, kind = _portfolio(args)
    print(f"{kind} portfolio: {len(doc.accounts):,} accounts, {len(doc.drivers)} drivers")
    options = ReportOptions(record_url="https://crm.example/accounts/{id}")
    build_report(doc, accounts, options)  # warm-up: imports, fonts, template compile

    started = time.perf_counter()
    page = build_report(doc, accounts, options)
    build_seconds = time.perf_counter() - started
    html_bytes = len(page.encode("utf-8"))
    svg_bytes = {
        chart_id: len(str(chart.svg).encode("utf-8"))
        for chart_id, chart in render_charts(doc, accounts, options).items()
    }
    started = time.perf_counter()
    png = drivers_png(doc.drivers)
    png_seconds = time.perf_counter() - started

    print(f"report: {html_bytes:,} bytes, built in {build_seconds:.2f} s")
    for chart_id, size in svg_bytes.items():
        print(f"  {chart_id}: {size:,} bytes of SVG")
    print(f"digest PNG: {len(png):,} bytes in {png_seconds:.2f} s")
    figures = {
        "portfolio": kind,
        "accounts": len(doc.accounts),
        "build_seconds": round(build_seconds, 3),
        "html_bytes": html_bytes,
        "svg_bytes": svg_bytes,
        "png_bytes": len(png),
        "png_seconds": round(png_seconds, 3),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
