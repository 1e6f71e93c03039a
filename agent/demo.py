"""``ax-agent demo``: one full cycle on the shipped sample portfolio, shown to a person.

No credentials and no network: the CRM is a plain-file folder, the state a SQLite
file, alerts go to the console. Running it twice shows the write-back diffing at
work: the second cycle writes nothing.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from rich.console import Console
from rich.panel import Panel

from agent.cycle import compute_from_state, ingest_surveys, plan_writeback, run_writeback, sync_crm
from agent.demo_sample import write_demo_folder
from agent.document import MetricsDocument
from agent.present import drivers_table, fmt, headline_table
from agent.settings import load_settings
from agent.state.store import StateStore
from agent.timeutil import parse_instant
from agent.writeback import WritebackCounts
from connectors.files import FilesCrm, FilesSurveys, written_file

__all__ = ["run_demo"]


def run_demo(directory: Path, *, fresh: bool, console: Console) -> MetricsDocument:
    """Create (or reuse) the demo folder, run one cycle, print a summary."""
    if fresh and directory.exists():
        shutil.rmtree(directory)
    folder = directory / "crm"
    if not folder.exists():
        write_demo_folder(folder)
        console.print(f"Wrote the sample portfolio to {folder}/")
    as_of = parse_instant((folder / "as_of.txt").read_text(encoding="utf-8"))
    settings = load_settings()
    store = StateStore.open(f"sqlite:///{directory / 'ax-state.db'}")
    try:
        crm = FilesCrm(folder)
        sync_crm(store, crm)
        _, rejected = ingest_surveys(store, [FilesSurveys(folder, as_of)])
        doc = compute_from_state(store, crm.name, as_of, settings.metrics, rejected)
        plan = plan_writeback(store, crm, doc, settings.fields.specs())
        counts = run_writeback(store, crm, plan)
    finally:
        store.close()
    _summary(console, doc, counts, folder)
    return doc


def _summary(console: Console, doc: MetricsDocument, counts: WritebackCounts, folder: Path) -> None:
    p = doc.portfolio
    console.print(Panel.fit(f"ax-agent demo, figures as of {doc.as_of:%Y-%m-%d %H:%M} UTC"))
    console.print(headline_table(p))
    console.print(
        f"NPS {fmt(p.nps)} rests on {fmt(p.account_coverage, percent=True)} of accounts and "
        f"{fmt(p.revenue_coverage, percent=True)} of revenue: the rest is flying blind."
    )
    console.print(
        f"At risk: {p.at_risk_accounts} accounts holding "
        f"{fmt(p.at_risk_revenue, decimals=0)} revenue. "
        f"Detractors closed within SLA: {p.detractors_closed_in_sla} of {p.detractors}."
    )
    console.print(drivers_table(doc.drivers, limit=4))
    console.print(
        f"Unmatched responses: {len(doc.unmatched)}; "
        f"rejected records this cycle: {len(doc.rejected)}"
    )
    for r in doc.rejected:
        console.print(f"  {r.source} record {r.position}: {r.reason}", markup=False)
    written = (
        f"Wrote {counts.written} records to {written_file(folder, 'account').name} and "
        f"{written_file(folder, 'contact').name} ({counts.failed} failed)."
        if counts.written or counts.failed
        else "Nothing changed since the last cycle: no CRM writes."
    )
    console.print(written)
