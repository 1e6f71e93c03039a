"""A whole cycle that would change nothing is not run again.

A cycle *settles* when running it again at the same instant would write nothing.
That holds when, from the moment its jobs started deciding to its end, it wrote
nothing to any input of the figures and decisions (the state's input version, moved
by database triggers in every writing transaction, did not move). It also holds when
everything it wrote was the idempotent record of its own decisions: the figures the
CRM confirmed, the alerts and escalations recorded and delivered, the tasks recorded
and created, the history, a coverage plan that stays fresh for its cadence
(``agent.service.rerun`` names the outcomes a rerun acts on again: refused writes,
alerts or tasks, deliveries pending, rules that did not load, a plan made every run).
Such a cycle settles as of the state after its writes, provided nobody else wrote an
input meanwhile (``agent.state.own_writes`` tells the cycle's own moves of the input
version from a webhook's, another process's). A rerun over that state finds every
figure written, every alert recorded and sent, every task made: it writes nothing, as
the tests check by forcing one. Its outcome then rests only on:

- the **fingerprint**: the input version, the agent's code, the settings, the rule
  files, the input rows reading left out (they appear in the document), and the last
  portfolio point before the cycle (what ``changed(portfolio.x)`` compares with);
- the **clock**, up to a **horizon**: the first instant at which the same inputs can
  give another outcome (``agent.core.horizon`` for the metrics document; the alert
  pipeline's realerts, escalations, silences and clock-reading rules; the end of a task
  rule's period; the coverage plan's next run).

The same computation over the same fingerprint at any instant in ``[as_of, horizon)``
gives the same document and again writes nothing, so the next whole cycle skips its
computing jobs (tasks, coverage plan, write-back, alerts, escalation), records them
``unchanged`` in the cycles log, and stores only the cycle's portfolio history point
from the settled figures. Anything else (a changed input, the horizon reached, a
replay at an earlier instant, ``--full``) runs the cycle in full. The settled row is
written after every job of the cycle committed, so a crash leaves the previous row,
whose fingerprint the crashed cycle's writes no longer match.

The plain-file CRM's own rewrite of its figure files moves its read cursor with the
write (``CursorAfterWrite``), so the next cycle's CRM sync reads nothing and the input
version stays where the settled cycle left it.
"""

from __future__ import annotations

import functools
import hashlib
from datetime import datetime, timedelta
from pathlib import Path

import agent
import connectors
from agent import __version__
from agent.config.settings import Settings
from agent.core.compute import Computed
from agent.core.contract import HISTORY_FIELDS
from agent.core.history import portfolio_figures
from agent.core.horizon import TICK, document_horizon, earliest
from agent.core.timeutil import parse_instant
from agent.rules.loader import fingerprint as rules_fingerprint
from agent.state.history import last_portfolio_point
from agent.state.migrate import head_revision
from agent.state.ops_settled import Settled
from agent.state.store import StateStore

__all__ = ["SKIPPABLE", "Settled", "cycle_fingerprint", "settled_state"]

#: The jobs a settled cycle skips (the CRM sync, the survey ingestion and the outbox
#: always run: they are how a change arrives, and how alerts leave).
SKIPPABLE = ("tasks", "coverage_plan", "writeback", "alerts", "escalation")


def cycle_fingerprint(
    store: StateStore,
    crm: str,
    settings: Settings,
    as_of: datetime,
    left_out: object,
    *,
    version: int,
) -> str:
    """What a whole cycle's outcome rests on, besides the clock (see the module).

    ``left_out``: what determines the input rows reading left out (``repr`` is taken);
    ``version``: the state's input version the cycle's outcome rests on."""
    digest = hashlib.sha256()
    parts = (
        str(version),
        _code(),
        head_revision(),
        settings.model_dump_json(),
        rules_fingerprint(settings.rules_dir) if settings.rules_dir.exists() else "",
        repr(left_out),
        repr(sorted((last_portfolio_point(store, crm, as_of) or {}).items())),
    )
    for part in parts:
        digest.update(part.encode())
        digest.update(b"\0")
    return digest.hexdigest()


@functools.cache
def _code() -> str:
    """The agent's code: its version and a hash of its modules (an edit between two runs
    of the same version, a development install, changes what a cycle computes)."""
    digest = hashlib.sha256(__version__.encode())
    for package in (agent, connectors):
        root = Path(next(iter(package.__path__)))
        for path in sorted(root.rglob("*.py")):
            digest.update(str(path.relative_to(root)).encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()


def settled_state(
    store: StateStore,
    crm: str,
    settings: Settings,
    *,
    fingerprint: str,
    computed: Computed,
    decisions_horizon: datetime | None,
) -> Settled:
    """The settled row of a cycle that changed nothing, with its horizon."""
    document = computed.document
    as_of = document.as_of
    horizon = earliest(
        document_horizon(document, computed.matches, settings.metrics),
        decisions_horizon,
        _plan_due(store, crm, settings),
    )
    wanted = {s.logical for s in settings.fields.specs() if s.object == "account"}
    if wanted & set(HISTORY_FIELDS):
        horizon = as_of + TICK  # written from the history as of 30 days ago: moves with time
    return Settled(fingerprint, as_of, horizon, portfolio_figures(document.portfolio))


def _plan_due(store: StateStore, crm: str, settings: Settings) -> datetime | None:
    """When the coverage plan job replaces the plan next (its cadence has passed)."""
    every = settings.schedule.coverage_plan.every
    last = store.survey_plan_summary(crm)
    if last is None or every is None:
        return None  # no plan job ran, or one runs every cycle (and writes: never settles)
    return parse_instant(str(last["as_of"])) + timedelta(seconds=every)
