"""What an alert pass would send, by the real pipeline, without touching real state.

``rules test`` (and ``run --dry-run``) must tell the truth: the alerts they show are
the ones the next real cycle sends, after realert, silences, inhibition and digests.
So the real ``AlertPipeline`` runs, on a private copy of the alert state (states,
silences, outbox) of the state database it is given, and "sends" to a collector.
The real database is only read.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, event, insert, select

from agent.alerts.console import ConsoleNotifier
from agent.alerts.decide import Decision
from agent.alerts.deliver import Notifier
from agent.alerts.model import AlertContent, AlertState, OutboxAlert, Sent
from agent.alerts.pipeline import AlertPipeline, CycleReport
from agent.alerts.repo import AlertRepo, OutboxRecord
from agent.alerts.setup import build_pipeline
from agent.config.settings import Settings
from agent.rules.facts import RuleInputs
from agent.rules.loader import RuleSet
from agent.rules.registry import RuleRegistry
from agent.state.dialect import create_state_engine
from agent.state.schema import alert_outbox, alert_state, metadata, silences

__all__ = [
    "PipelineFactory",
    "Preview",
    "copy_alert_state",
    "held_reason",
    "preview_alerts",
    "preview_cycle",
]

#: The tables whose rows decide what is sent: copied into the preview's database.
_TABLES = (alert_state, silences, alert_outbox)
_BATCH = 1000


@dataclass(frozen=True, slots=True)
class Preview:
    """The alerts a cycle would deliver, the decisions behind them, and the cycle's report."""

    sent: tuple[OutboxAlert, ...]
    decisions: tuple[Decision, ...]
    report: CycleReport
    #: Alert states and silences the preview started from (0, 0: a first run).
    known_states: int = 0
    known_silences: int = 0
    held: tuple[Decision, ...] = field(default=())
    #: A digest's alert id -> the alerts it stands for.
    members: dict[str, tuple[AlertContent, ...]] = field(default_factory=dict)


class _Collector(ConsoleNotifier):
    """Delivers into a list: what Slack (or the console) would be handed, in order."""

    def __init__(self) -> None:
        super().__init__(lambda _text: None)
        self.alerts: list[OutboxAlert] = []

    def send(self, alert: OutboxAlert, channel_id: str) -> Sent:
        self.alerts.append(alert)
        return super().send(alert, channel_id)

    def update(self, alert: OutboxAlert, target: Sent) -> Sent:
        self.alerts.append(alert)
        return target


@contextmanager
def copy_alert_state(source: Engine | None) -> Iterator[Engine]:
    """A private database holding the alert rows of ``source`` (or none), removed after.

    A SQLite file in a temporary folder, opened as the state store opens SQLite: the
    real delivery sends on several threads (one lane per channel), each on its own
    connection. An in-memory database is one connection, which SQLite refuses to a
    second thread: a preview with enough alerts to fill a lane stopped there."""
    with tempfile.TemporaryDirectory(prefix="ax-agent-preview-") as folder:
        engine = create_state_engine(f"sqlite:///{Path(folder) / 'alerts.db'}")
        event.listen(engine, "connect", _throwaway)
        try:
            metadata.create_all(engine, tables=list(_TABLES))
            if source is not None:
                with source.connect() as read, engine.begin() as write:
                    for table in _TABLES:
                        rows = [dict(row) for row in read.execute(select(table)).mappings()]
                        for start in range(0, len(rows), _BATCH):
                            write.execute(insert(table), rows[start : start + _BATCH])
            yield engine
        finally:
            engine.dispose()


def _throwaway(dbapi_conn: Any, _record: Any) -> None:
    """The private copy is removed after the preview: a commit need not reach the disk
    (the state store's engine syncs every commit, which a throwaway file only waits for)."""
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute("PRAGMA synchronous=OFF")
    finally:
        cursor.close()


#: Builds the pipeline the real cycle uses, on the preview's database and notifier.
PipelineFactory = Callable[[Engine, Notifier], AlertPipeline]


def preview_cycle(
    pipeline_for: PipelineFactory,
    rules: RuleSet,
    inputs: RuleInputs,
    now: datetime,
    state: Engine | None,
) -> Preview:
    """Run one real alert pass (the alerts job, then the escalation job) on a copy of
    ``state``'s alert rows; deliver to a list."""
    with copy_alert_state(state) as engine:
        collector = _Collector()
        repo = _RememberingRepo(engine)
        pipeline = pipeline_for(engine, collector)
        pipeline.repo = repo  # the same database; what it records is kept to show
        enabled = rules.enabled()
        states = repo.states(r.id for r in enabled)
        active = repo.silences(now)
        report = pipeline.run(inputs, now, escalate=False)
        decisions = report.outcomes
        pipeline.escalate(inputs, now)  # the escalation job of the same pass
        members = {
            a.alert_id: repo.members(a.alert_id) or _members(engine, a.alert_id)
            for a in collector.alerts
            if a.content.kind == "digest"
        }
        return Preview(
            sent=tuple(collector.alerts),
            decisions=tuple(decisions),
            report=report,
            known_states=len(states),
            known_silences=len(active),
            held=tuple(d for d in decisions if d.action == "hold"),
            members=members,
        )


class _RememberingRepo(AlertRepo):
    """The real repository, keeping what this pass recorded: the alerts a digest made in
    the pass stands for are shown without reading back and decoding every one of them
    (tens of thousands in a first pass at 50,000 accounts)."""

    def __init__(self, engine: Engine) -> None:
        super().__init__(engine)
        self._recorded: dict[str, OutboxRecord] = {}
        with engine.connect() as conn:  # stored first: a row of these ids is not replaced
            stored: list[str] = list(conn.execute(select(alert_outbox.c.alert_id)).scalars())
        self._before = frozenset(stored)

    def record(
        self,
        records: Sequence[OutboxRecord],
        states: Sequence[AlertState],
        *,
        conn: Connection | None = None,
    ) -> int:
        added = super().record(records, states, conn=conn)
        for record in records:  # first wins, as in the outbox
            self._recorded.setdefault(record.content.alert_id, record)
        return added

    def members(self, digest_id: str) -> tuple[AlertContent, ...] | None:
        """The alerts of a digest this pass recorded, in the digest's order (its
        message's); None: a digest recorded before (read it from the database)."""
        digest = self._recorded.get(digest_id)
        if digest is None or not digest.members or digest_id in self._before:
            return None
        found = [self._recorded.get(m) for m in digest.members if m not in self._before]
        if len(found) != len(digest.members) or any(f is None for f in found):
            return None
        return tuple(f.content for f in found if f is not None)


def _members(engine: Engine, digest_id: str) -> tuple[AlertContent, ...]:
    """The alerts a digest recorded before this pass stands for, read in one query."""
    with engine.connect() as conn:
        payload = conn.execute(
            select(alert_outbox.c.payload).where(alert_outbox.c.alert_id == digest_id)
        ).scalar()
        ids = list((payload or {}).get("members", []))
        rows: list[dict[str, Any]] = list(
            conn.execute(
                select(alert_outbox.c.payload).where(alert_outbox.c.alert_id.in_(ids))
            ).scalars()
        )
        return tuple(AlertContent.model_validate(row["content"]) for row in rows)


def held_reason(decision: Decision) -> str:
    """``inhibited_by:at-risk`` -> ``inhibited by at-risk``; ``silenced:3`` -> ``silence 3``."""
    kind, _, detail = decision.reason.partition(":")
    if kind == "inhibited_by":
        return f"inhibited by {detail}"
    if kind == "silenced":
        return f"silenced (silence {detail})"
    return decision.reason.replace("_", " ")


def preview_alerts(
    settings: Settings,
    state: Engine,
    inputs: RuleInputs,
    now: datetime,
    echo: Callable[[str], None],
) -> dict[str, int]:
    """``run --dry-run``'s alert stage: one line per alert the real cycle would send."""
    preview = preview_cycle(
        lambda engine, notifier: build_pipeline(settings, engine, notifier),
        RuleRegistry(
            settings.rules_dir, channels=set(settings.slack.channels), routes=settings.slack.routes
        )
        .refresh()
        .rules,
        inputs,
        now,
        state,
    )
    for alert in preview.sent:
        to = alert.destination
        where = f"@{to.owner_email} (else {to.channel})" if to.owner_email else to.channel
        echo(f"{alert.content.kind} {alert.content.rule_id} → {where}: {alert.content.title}")
    echo(f"{len(preview.sent)} alert message(s) would be sent")
    return {"would_send": len(preview.sent), "held": len(preview.held)}
