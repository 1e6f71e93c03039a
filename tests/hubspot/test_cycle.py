"""Whole cycles against the fake portal: a second cycle with nothing changed writes nothing.

Figures go through the write-back planner (``agent.sync.writeback``): rounded as each field
is, compared with what HubSpot holds, only the differences sent in full batches.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime

from agent.core.contract import ObjectKind, default_field_specs
from agent.core.models import Account
from agent.core.ports import FieldUpdate, FieldValue
from agent.sync.writeback import execute, normalise, plan_updates
from connectors.hubspot import HubSpotConnector
from tests.hubspot.fakeportal import FakePortal
from tests.hubspot.harness import provision_all

MakeConnector = Callable[..., HubSpotConnector]
UPDATES = r"/crm/v3/objects/\w+/batch/update"
SPECS = {s.hubspot: s for s in default_field_specs()}


def _plan(
    figures: Mapping[str, Mapping[str, FieldValue]], current: Mapping[str, Mapping[str, object]]
) -> list[FieldUpdate]:
    desired = {
        rid: {name: normalise(SPECS[name], value) for name, value in values.items()}
        for rid, values in figures.items()
    }
    return plan_updates(desired, current, SPECS)


def _figures(account: Account) -> dict[str, FieldValue]:
    """Deterministic stand-in figures for one account (the real ones come from compute)."""
    score = min(100.0, account.revenue / 1000)
    return {
        "ax_health_score": score,
        "ax_health_status": "healthy" if score >= 70 else "at_risk",
        "ax_nps": round(score / 3, 4),
        "ax_nps_strict": None,
        "ax_tiers_covered": ("management", "executive"),
        "ax_at_risk": score < 40,
        "ax_respondents": 3,
        "ax_last_response_at": datetime(2026, 2, 1, 8, 0, tzinfo=UTC),
    }


class _Cycle:
    """Read (full, then incremental), plan against the mirror, write in full batches."""

    def __init__(self, connector: HubSpotConnector) -> None:
        self.connector = connector
        self.cursors: dict[ObjectKind, str | None] = {"account": None, "contact": None}
        self.accounts: dict[str, Account] = {}
        self.contact_values: dict[str, Mapping[str, object]] = {}

    def run(self) -> int:
        for batch in self.connector.read_accounts(self.cursors["account"]):
            self.accounts.update({a.id: a for a in batch.records})
            for gone in batch.deleted_ids:
                self.accounts.pop(gone, None)
            self.cursors["account"] = batch.cursor or self.cursors["account"]
        for cbatch in self.connector.read_contacts(self.cursors["contact"]):
            self.contact_values.update({c.id: c.crm_values for c in cbatch.records})
            self.cursors["contact"] = cbatch.cursor or self.cursors["contact"]
        desired = {a.id: _figures(a) for a in self.accounts.values()}
        current = {a.id: a.crm_values for a in self.accounts.values()}
        contact_desired = {c: {"ax_tier": "executive"} for c in self.contact_values}
        plans: tuple[tuple[ObjectKind, list[FieldUpdate]], ...] = (
            ("account", _plan(desired, current)),
            ("contact", _plan(contact_desired, self.contact_values)),
        )
        return sum(execute(self.connector, obj, updates).written for obj, updates in plans)


def test_a_second_cycle_with_nothing_changed_makes_no_update_calls(
    portal: FakePortal, make_connector: MakeConnector
) -> None:
    provision_all(portal)
    for i in range(130):
        company = portal.add_company(name=f"C{i}", annualrevenue=str(i * 1000))
        portal.add_contact(company=company, email=f"c{i}@example.com")
    cycle = _Cycle(make_connector())

    assert cycle.run() == 260
    first = len(portal.calls("POST", UPDATES))
    assert first == 4  # 130 companies and 130 contacts, 100 per call

    portal.tick(60_000)
    assert cycle.run() == 0
    assert len(portal.calls("POST", UPDATES)) == first


def test_only_what_changed_is_written_next_cycle(
    portal: FakePortal, make_connector: MakeConnector
) -> None:
    provision_all(portal)
    ids = [portal.add_company(name=f"C{i}", annualrevenue=str(i * 10_000)) for i in range(5)]
    cycle = _Cycle(make_connector())
    cycle.run()
    portal.tick(60_000)
    portal.modify("companies", ids[2], annualrevenue="95000")
    before = len(portal.calls("POST", UPDATES))

    assert cycle.run() == 1

    [call] = portal.calls("POST", UPDATES)[before:]
    assert call.body["inputs"] == [
        {
            "id": ids[2],
            "properties": {
                "ax_health_score": "95",
                "ax_health_status": "healthy",
                "ax_nps": "31.7",
                "ax_at_risk": "false",
            },
        },
    ]
