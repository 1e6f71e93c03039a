"""The coverage plan in the cycle: computed from the cycle's figures, kept in the state.

The ``coverage_plan`` job stores the plan (its contacts and headline); the write-back
writes ``survey_next`` from the stored contacts when ``plan.write_back`` is on; the
rules and the digest read the headline (``portfolio.coverage_planned_contacts``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from agent.config.settings import PlanSettings
from agent.core.compute import Computed, compute_with_matches, without_gc
from agent.core.contract import FieldSpec, MetricsConfig
from agent.core.document import MetricsDocument
from agent.core.models import Contact
from agent.core.plan import CoveragePlan, PlanOptions, coverage_plan
from agent.sources.folder import compute_read
from agent.sources.plainfiles import read_crm_folder
from agent.state.store import StateStore

__all__ = [
    "options_from",
    "plan_for_folder",
    "plan_for_state",
    "plan_from_computed",
    "plan_rows",
    "plan_summary",
    "store_plan",
    "wants_survey_next",
    "with_survey_next",
]


def options_from(settings: PlanSettings, **changes: Any) -> PlanOptions:
    """The plan's options from ``plan:`` in the config, with a command's overrides."""
    base = PlanOptions(
        target=settings.target,
        per_account=settings.per_account,
        fatigue_days=settings.fatigue_days,
        top=settings.top,
    )
    return replace(base, **{k: v for k, v in changes.items() if v is not None})


def plan_from_computed(
    computed: Computed, contacts: Sequence[Contact], options: PlanOptions
) -> CoveragePlan:
    """The plan over one computation (its document, accounts and matched responses)."""
    return coverage_plan(computed.document, computed.accounts, contacts, computed.matches, options)


def plan_rows(plan: CoveragePlan) -> Iterator[tuple[str, str, str]]:
    """``(contact_id, account_id, kind)`` for every contact the plan asks to survey."""
    for account in plan.accounts:
        for contact in account.contacts:
            yield contact.id, account.id, "plan"
    for gap in plan.tier_gaps:
        for contact in gap.contacts:
            yield contact.id, gap.account_id, "tier_gap"


def plan_summary(plan: CoveragePlan) -> dict[str, Any]:
    """The headline the digest and the rules read."""
    return {
        "as_of": plan.as_of.isoformat(),
        "target": plan.target,
        "coverage_now": plan.coverage_now,
        "coverage_planned": plan.coverage_planned,
        "coverage_expected": plan.coverage_expected,
        "planned_contacts": plan.planned_contacts,
        "planned_accounts": len(plan.accounts),
        "tier_gap_accounts": len(plan.tier_gaps),
    }


def store_plan(store: StateStore, crm: str, plan: CoveragePlan) -> int:
    """Replace the stored plan; the number of contacts it marks."""
    return store.replace_survey_plan(crm, plan_rows(plan), plan.as_of, plan_summary(plan))


def wants_survey_next(specs: Sequence[FieldSpec]) -> bool:
    """Whether the write-back includes ``contact.survey_next`` (``plan.write_back``)."""
    return any(s.object == "contact" and s.logical == "survey_next" for s in specs)


def with_survey_next(doc: MetricsDocument, planned: set[str]) -> MetricsDocument:
    """The document with each contact's ``survey_next``: planned or not."""
    contacts = [replace(c, survey_next=c.contact_id in planned) for c in doc.contacts]
    return replace(doc, contacts=contacts)


def plan_for_folder(
    folder: Path, as_of: datetime, config: MetricsConfig, options: PlanOptions
) -> tuple[Computed, CoveragePlan]:
    """Read a plain-file CRM folder fresh and plan over it (``plan coverage --crm-dir``)."""
    with without_gc():  # millions of acyclic objects: the collector's scans find nothing
        data = read_crm_folder(folder, as_of)
        computed = compute_read(data, as_of=as_of, config=config, with_matches=True)
    return computed, plan_from_computed(computed, data.contacts, options)


def plan_for_state(
    store: StateStore, crm: str, as_of: datetime, config: MetricsConfig, options: PlanOptions
) -> tuple[Computed, CoveragePlan]:
    """Plan over the configured CRM as the agent last mirrored it (as a full read left
    it: ``StateStore.load_mirror``)."""
    accounts, contacts = store.load_mirror(crm)
    document, matches = compute_with_matches(
        accounts, contacts, store.load_responses(), as_of=as_of, config=config
    )
    computed = Computed(document, accounts, matches)
    return computed, plan_from_computed(computed, contacts, options)
