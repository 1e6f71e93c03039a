"""A small plain-file portfolio and one agent cycle over it, with CRM tasks."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from agent.alerts.console import ConsoleNotifier
from agent.alerts.model import OutboxAlert, Sent
from agent.alerts.pipeline import AlertPipeline
from agent.alerts.setup import build_pipeline
from agent.config.settings import Settings, TasksSettings
from agent.core.ports import TaskCrm
from agent.sources.files import FilesCrm, FilesSurveys
from agent.sources.filetasks import FilesTasks
from agent.state.store import StateStore
from agent.sync.cycle import (
    Computed,
    compute_from_state,
    evaluate_alerts,
    ingest_surveys,
    rule_inputs,
    sync_crm,
)
from agent.tasks.sync import TaskReport, TaskSync

REPO = Path(__file__).resolve().parents[2]
AS_OF = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
FALLBACK = "cx-lead@vendor.example"

ACCOUNTS = [
    # id, name, domain, revenue, revenue_potential, owner_email
    ("A1", "Acme", "acme.example", "900000", "", "owner1@vendor.example"),
    ("A2", "Beta", "beta.example", "50000", "", ""),
    ("A3", "Gamma", "gamma.example", "100000", "400000", "owner3@vendor.example"),
]
CONTACTS = [
    ("C1", "A1", "dana@acme.example", "Dana Exec", "CFO"),
    ("C2", "A2", "eve@beta.example", "Eve Agent", "Support Agent"),
    ("C3", "A3", "gus@gamma.example", "Gus Chief", "CEO"),
    ("C4", "A3", "hal@gamma.example", "Hal Agent", "Engineer"),
]


def _iso(when: datetime) -> str:
    return when.isoformat()


RESPONSES = [
    ("R1", "dana@acme.example", "3", _iso(AS_OF - timedelta(days=1)), "Support", "No callback."),
    ("R2", "eve@beta.example", "2", _iso(AS_OF - timedelta(days=2)), "Product", ""),
    ("R3", "gus@gamma.example", "10", _iso(AS_OF - timedelta(days=20)), "Support", ""),
    ("R4", "hal@gamma.example", "9", _iso(AS_OF - timedelta(days=3)), "Support", ""),
]


def write_folder(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    _csv(
        folder / "accounts.csv",
        ["id", "name", "domain", "revenue", "revenue_potential", "owner_email"],
        ACCOUNTS,
    )
    _csv(folder / "contacts.csv", ["id", "account_id", "email", "name", "title"], CONTACTS)
    _csv(
        folder / "responses.csv",
        ["response_id", "email", "score", "submitted_at", "driver", "comment"],
        RESPONSES,
    )
    return folder


def _csv(path: Path, header: list[str], rows: list[tuple[str, ...]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


def read_tasks(folder: Path) -> list[dict[str, str]]:
    path = folder / "ax_tasks.csv"
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def write_tasks(folder: Path, rows: list[dict[str, str]]) -> None:
    with (folder / "ax_tasks.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


class SlackLike(ConsoleNotifier):
    """The console's content, answered as Slack answers: posted, so updates go out."""

    def send(self, alert: OutboxAlert, channel_id: str) -> Sent:
        sent = super().send(alert, channel_id)
        return Sent(channel=sent.channel, ts=sent.ts)


@dataclass
class Agent:
    """One agent over the folder: the CRM, the alert pipeline and the task sync."""

    store: StateStore
    folder: Path
    crm: TaskCrm | None = None
    printed: list[str] = field(default_factory=list)
    pipeline: AlertPipeline = field(init=False)
    tasks: TaskSync = field(init=False)

    def __post_init__(self) -> None:
        settings = Settings(
            rules_dir=REPO / "rules", tasks=TasksSettings(fallback_owner_email=FALLBACK)
        )
        self.settings = settings
        self.pipeline = build_pipeline(settings, self.store.engine, SlackLike(self.printed.append))
        self.tasks = TaskSync(
            self.store,
            self.crm or FilesTasks(self.folder),
            loop_sla=timedelta(hours=48),
            fallback_owner=FALLBACK,
        )

    def cycle(self, now: datetime = AS_OF) -> tuple[TaskReport, TaskReport, Computed]:
        """sync, ingest, read tasks back, compute, alert, create tasks."""
        files = FilesCrm(self.folder)
        sync_crm(self.store, files)
        ingest_surveys(self.store, [FilesSurveys(self.folder, now)])
        closed = self.tasks.read_back(now)
        computed = compute_from_state(self.store, files.name, now, self.settings.metrics)
        evaluate_alerts(self.pipeline, computed, None, now)
        created = self.tasks.run(
            self.pipeline.registry.current.enabled(), rule_inputs(computed, None), now
        )
        return closed, created, computed
