"""``ax-agent demo``: one full cycle on the shipped sample portfolio, shown to a person.

No credentials and no network: the CRM is a plain-file folder, the state a SQLite
file, alerts go to the console. Running it twice shows the write-back diffing and
the alert de-duplication at work: the second cycle writes and alerts nothing new.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from rich.console import Console
from rich.panel import Panel

from agent.alerts.console import ConsoleNotifier
from agent.alerts.model import OutboxAlert, Sent
from agent.alerts.pipeline import CycleReport
from agent.cli.demo_sample import write_demo_folder
from agent.config.logging import configure_from_settings
from agent.config.service import JOB_NAMES
from agent.config.settings import FilesSettings, Settings, load_settings
from agent.core.timeutil import parse_instant
from agent.report.present import drivers_table, fmt, headline_table
from agent.service.cycle import run_cycle
from agent.service.runner import JobResult
from agent.service.runtime import Runtime
from agent.sources.files import written_file
from agent.sources.filetasks import tasks_file
from agent.state.store import StateStore
from agent.sync.cycle import Computed
from agent.sync.wiring import shipped_rules_dir
from agent.tasks.sync import TaskReport

__all__ = ["run_demo"]

#: The demo shows a handful of alerts in full; the rest are counted.
_ALERTS_SHOWN = 6


def run_demo(directory: Path, *, fresh: bool, console: Console) -> Computed:
    """Create (or reuse) the demo folder, run one cycle, print a summary."""
    if fresh and directory.exists():
        shutil.rmtree(directory)
    folder = directory / "crm"
    if not folder.exists():
        write_demo_folder(folder)
        console.print(f"Wrote the sample portfolio to {folder}/")
    as_of = parse_instant((folder / "as_of.txt").read_text(encoding="utf-8"))
    settings = load_settings()
    settings = settings.model_copy(
        update={
            "rules_dir": shipped_rules_dir(settings.rules_dir),
            "crm": "files",
            "files": FilesSettings(path=folder),
            "tasks": settings.tasks.model_copy(update={"enabled": True}),
            "state_url": demo_state_url(directory),
        }
    )
    _configure_logs(settings)
    config = write_demo_config(directory, settings.rules_dir)
    store = StateStore.open(demo_state_url(directory))
    try:
        shown = _DemoConsole()
        runtime = Runtime.build(settings, store, notifier=shown, as_of=as_of)
        jobs = [j for j in JOB_NAMES if settings.schedule.cadence(j).enabled]
        results = {r.job: r for r in run_cycle(runtime, jobs)}
        computed = runtime.computed()
        _summary(console, computed, results.get("writeback"), folder)
        console.rule("Alerts (console notifier: what Slack would get)")
        _alerts(console, shown)
        _alert_summary(console, runtime.last_alerts)
        if runtime.last_tasks is not None:
            _task_summary(console, *runtime.last_tasks, folder)
        elif "unchanged" in getattr(results.get("tasks"), "counts", {}):
            console.rule(_TASKS_RULE)  # a settled cycle: the tasks made before still stand
            console.print(_NO_NEW_TASKS)
        for result in results.values():
            if not result.ok:
                console.print(f"The {result.job} job failed: {result.error}", markup=False)
    finally:
        store.close()
    pinned = as_of.isoformat().replace("+00:00", "Z")
    console.print(
        "Continue this demo (same state file, same date; nothing shown is sent again):\n"
        f"  ax-agent run --once --config {config} --as-of {pinned}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
    return computed


def _configure_logs(settings: Settings) -> None:
    """The demo's logs: errors only (its summary says what matters), unless a level was
    asked for (``--log-level`` or ``AX_LOG__LEVEL``); the format as every command has it."""
    asked = os.environ.get("AX_LOG__LEVEL")
    log = settings.log if asked else settings.log.model_copy(update={"level": "error"})
    configure_from_settings(settings.model_copy(update={"log": log}))


def demo_state_url(directory: Path) -> str:
    """The demo's state file: the one ``ax-agent run --once --config <dir>/ax-agent.yaml`` uses."""
    return f"sqlite:///{directory / 'ax-state.db'}"


def write_demo_config(directory: Path, rules_dir: Path) -> Path:
    """The config that points ``run`` at the demo's folder, state file and rules."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "ax-agent.yaml"
    text = (
        "# Written by `ax-agent demo`; `ax-agent run --once --config` it to continue the demo.\n"
        "crm: files\n"
        f"files:\n  path: {json.dumps(str(directory / 'crm'))}\n"
        f"state_url: {json.dumps(demo_state_url(directory))}\n"
        f"rules_dir: {json.dumps(str(rules_dir))}\n"
    )
    path.write_text(text, encoding="utf-8")
    return path


_TASKS_RULE = "CRM tasks (where account owners work)"
_NO_NEW_TASKS = "No new tasks: every detractor and upsell candidate has one already."


def _task_summary(console: Console, closed: TaskReport, created: TaskReport, folder: Path) -> None:
    console.rule(_TASKS_RULE)
    if closed.completed_in_crm:
        console.print(
            f"{closed.completed_in_crm} task(s) marked completed in {tasks_file(folder).name}: "
            f"{closed.loops_closed} detractor loop(s) closed, their alerts updated."
        )
        for alert_id in closed.closed_alerts:
            console.print(f"  alert {alert_id}: loop closed by the CRM task", markup=False)
    if created.created:
        console.print(f"Created {created.created} task(s) in {tasks_file(folder)}.")
    else:
        console.print(_NO_NEW_TASKS)
    if created.pushed:
        console.print(f"Completed {created.pushed} task(s) whose loop was closed elsewhere.")
    figures = created.figures
    if figures is not None and figures.created:
        console.print(
            f"Tasks in the CRM: {figures.created}, completed {figures.completed} "
            f"({figures.completed_in_time} by their due time), open {figures.open}, "
            f"overdue {figures.overdue}."
        )
    if figures is not None and figures.detractor_tasks:
        console.print(
            f"Detractor tasks: {figures.detractor_tasks}, completed "
            f"{figures.detractor_tasks_completed}, within the SLA "
            f"{figures.detractor_tasks_closed_in_sla}: task closed-loop rate "
            f"{fmt(figures.closed_loop_rate, percent=True)}."
        )


class _DemoConsole(ConsoleNotifier):
    """The console notifier, keeping the texts and which of them carry a chart."""

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.with_chart: list[str] = []
        super().__init__(self.texts.append)

    def send(self, alert: OutboxAlert, channel_id: str) -> Sent:
        sent = super().send(alert, channel_id)
        if alert.content.attachment is not None:
            self.with_chart.append(self.texts[-1])
        return sent


def _alerts(console: Console, shown: _DemoConsole) -> None:
    """A handful of alerts in full, and the weekly digest however late it came."""
    first = shown.texts[:_ALERTS_SHOWN]
    for text in first:
        console.print(text, markup=False, highlight=False)
    rest = len(shown.texts) - len(first)
    if rest:
        console.print(f"... and {rest} more alerts.")
    for text in shown.with_chart:
        if text not in first:
            console.print(text, markup=False, highlight=False)


def _summary(
    console: Console, computed: Computed, writeback: JobResult | None, folder: Path
) -> None:
    doc = computed.document
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
    counts = writeback.counts if writeback is not None else {}
    done, failed = counts.get("written", 0), counts.get("write_failed", 0)
    written = (
        f"Wrote {done} records to {written_file(folder, 'account').name} and "
        f"{written_file(folder, 'contact').name} ({failed} failed)."
        if done or failed
        else "Nothing changed since the last cycle: no CRM writes."
    )
    console.print(written)


def _alert_summary(console: Console, report: CycleReport | None) -> None:
    if report is None:
        return
    sent = report.delivery.sent if report.delivery is not None else 0
    if report.rules_error:
        console.print(f"Rule files have errors: {report.rules_error}", markup=False)
    console.print(
        f"{report.rules} rules evaluated, {report.matches} conditions true, "
        f"{report.recorded} new alerts recorded, {sent} printed here "
        "(no Slack token: nothing was sent; `ax-agent alerts list` shows them as printed)."
    )
