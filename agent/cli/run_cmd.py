"""``ax-agent run``: the agent loop over the configured connectors."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import structlog
import typer

from agent.alerts.setup import build_pipeline
from agent.cli.common import cli_settings
from agent.cycle import (
    check_fields,
    compute_from_state,
    evaluate_alerts,
    ingest_surveys,
    plan_writeback,
    run_writeback,
    sync_crm,
)
from agent.settings import Settings
from agent.state.store import StateStore
from agent.timeutil import utcnow
from agent.wiring import build_crm, build_notifier, build_survey_sources

__all__ = ["register", "run_cycle"]

_log = structlog.get_logger(__name__)


def run_cycle(settings: Settings, store: StateStore, *, dry_run: bool = False) -> bool:
    """One full cycle; True when it succeeded. A failure is logged, never raised."""
    cycle_id = store.start_cycle("cycle")
    counts: dict[str, int] = {}
    try:
        as_of = utcnow()
        crm = build_crm(settings)
        counts.update(sync_crm(store, crm))
        ingested, rejected = ingest_surveys(store, build_survey_sources(settings, as_of))
        counts.update(ingested)
        computed = compute_from_state(store, crm.name, as_of, settings.metrics, rejected)
        plan = plan_writeback(store, crm, computed.document, settings.fields.specs())
        counts["planned_records"] = plan.records
        if not dry_run:
            check_fields(crm, settings.fields.specs())
            result = run_writeback(store, crm, plan)
            counts.update(written=result.written, write_failed=result.failed)
            pipeline = build_pipeline(settings, store.engine, build_notifier(settings))
            report = evaluate_alerts(pipeline, computed, settings.slack.loop_closed_field, as_of)
            counts.update(alerts_recorded=report.recorded)
    except Exception as exc:  # one cycle's failure must not stop the agent
        _log.exception("cycle_failed", cycle=cycle_id)
        store.finish_cycle(cycle_id, "failed", counts, f"{type(exc).__name__}: {exc}")
        return False
    store.finish_cycle(cycle_id, "ok", counts, None)
    _log.info("cycle_done", cycle=cycle_id, **counts)
    return True


def run(
    once: Annotated[
        bool, typer.Option("--once", help="Run one cycle and exit (1 if it failed).")
    ] = False,
    interval: Annotated[float, typer.Option(help="Seconds between cycles.")] = 300.0,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Plan write-backs, send nothing.")
    ] = False,
    config: Annotated[Path | None, typer.Option("--config", help="YAML config file.")] = None,
) -> None:
    """Run the agent: sync, ingest, compute, write back; repeat."""
    settings = cli_settings(config)
    store = StateStore.open(settings.state_url)
    try:
        while True:
            ok = run_cycle(settings, store, dry_run=dry_run)
            if once:
                raise typer.Exit(code=0 if ok else 1)
            time.sleep(interval)
    finally:
        store.close()


def register(app: typer.Typer) -> None:
    """Add ``run`` to ``app``."""
    app.command("run")(run)
