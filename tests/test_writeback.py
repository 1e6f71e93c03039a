"""The write-back planner: only changed values, compared after the CRM's rounding."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone

import pytest

from agent.core.contract import (
    FieldOverride,
    FieldsConfig,
    FieldSpec,
    ObjectKind,
    default_field_specs,
)
from agent.core.document import AccountMetrics, ContactFigures, MetricsDocument, PortfolioMetrics
from agent.core.ports import FieldUpdate, WriteOutcome
from agent.sync.writeback import desired_values, execute, normalise, plan_updates

SPECS = {s.logical: s for s in default_field_specs() if s.object == "account"}
AS_OF = datetime(2025, 6, 1, 12, tzinfo=UTC)


def _account(**changes: object) -> AccountMetrics:
    base: dict[str, object] = {
        "id": "A1",
        "name": "Alpha",
        "revenue": 1000.0,
        "contacts": 4,
        "respondents": 2,
        "promoters": 1,
        "passives": 0,
        "detractors": 1,
        "nps": 0.0,
        "nps_strict": -33.33333333333333,
        "contact_coverage": 0.5,
        "tiers_covered": ["frontline", "executive"],
        "tier_coverage": 2 / 3,
        "tier_nps": {"executive": -100.0, "frontline": 100.0},
        "tier_misaligned": True,
        "last_response_at": datetime(2025, 5, 30, 12, 0, 0, 123456, tzinfo=UTC),
        "recency_score": 100.0,
        "health_score": 49.5,
        "health_status": "neutral",
        "at_risk": True,
        "open_detractors": 1,
        "overdue_detractors": 1,
        "upsell_candidate": False,
    }
    base.update(changes)
    return AccountMetrics(**base)  # type: ignore[arg-type]


def _doc(accounts: list[AccountMetrics], contacts: list[ContactFigures] = ()) -> MetricsDocument:  # type: ignore[assignment]
    portfolio = PortfolioMetrics(*([0] * 18))  # type: ignore[arg-type]
    return MetricsDocument(AS_OF, portfolio, accounts, [], [], [], list(contacts))


def test_desired_values_rounds_per_field_kind() -> None:
    values = desired_values(_doc([_account()]), default_field_specs(), "salesforce", "account")
    row = values["A1"]
    assert row["AX_Health_Score__c"] == 50  # 49.5 rounds half up, 0 decimals
    assert row["AX_NPS_Strict__c"] == -33.3
    assert row["AX_Contact_Coverage__c"] == 50  # ratio written as percent
    assert row["AX_Tier_Coverage__c"] == 67
    assert row["AX_Tiers_Covered__c"] == ("executive", "frontline")
    assert row["AX_Tiers_Missing__c"] == ("management",)
    assert row["AX_At_Risk__c"] is True
    assert row["AX_Last_Response_At__c"] == datetime(2025, 5, 30, 12, tzinfo=UTC)


def test_desired_values_uses_each_crms_names_and_contact_figures() -> None:
    contact = ContactFigures("C1", "A1", "executive", 3, "detractor", AS_OF)
    values = desired_values(_doc([], [contact]), default_field_specs(), "hubspot", "contact")
    assert values == {
        "C1": {
            "ax_tier": "executive",
            "ax_last_score": 3,
            "ax_nps_category": "detractor",
            "ax_last_response_at": AS_OF,
        }
    }


def test_unchanged_values_plan_nothing_even_in_other_notations() -> None:
    specs = default_field_specs()
    desired = desired_values(_doc([_account()]), specs, "hubspot", "account")
    by_field = {s.hubspot: s for s in specs}
    current = {
        "A1": {
            "ax_health_score": "50",
            "ax_health_status": "neutral",
            "ax_nps": "0.0",
            "ax_nps_strict": -33.34,  # rounds to -33.3 as well
            "ax_contact_coverage": 50.0,
            "ax_tier_coverage": "66.7",
            "ax_tiers_covered": "frontline;executive",
            "ax_tiers_missing": "management",
            "ax_tier_misaligned": "true",
            "ax_at_risk": True,
            "ax_upsell_candidate": "false",
            "ax_respondents": "2",
            "ax_open_detractors": 1,
            "ax_overdue_detractors": "1",
            "ax_last_response_at": "2025-05-30T14:00:00+02:00",
        }
    }
    assert plan_updates(desired, current, by_field) == []


def test_only_changed_fields_are_planned() -> None:
    specs = default_field_specs()
    by_field = {s.salesforce: s for s in specs}
    old = desired_values(_doc([_account()]), specs, "salesforce", "account")
    new = desired_values(_doc([_account(nps=12.25, at_risk=False)]), specs, "salesforce", "account")
    updates = plan_updates(new, old, by_field)
    assert updates == [FieldUpdate("A1", {"AX_NPS__c": 12.3, "AX_At_Risk__c": False})]


def test_null_clears_a_held_value_but_never_writes_null_over_empty() -> None:
    specs = default_field_specs()
    by_field = {s.files: s for s in specs}
    desired = desired_values(
        _doc([_account(nps=None, health_score=None, tiers_covered=[])]), specs, "files", "account"
    )
    held = {"A1": {"nps": "10.0", "health_score": "", "tiers_covered": ""}}
    planned = plan_updates(desired, held, by_field)[0].values
    assert planned["nps"] is None
    assert "health_score" not in planned
    assert "tiers_covered" not in planned


@pytest.mark.parametrize(
    ("kind", "raw", "expected"),
    [
        ("number", "12.25", 12.3),
        ("number", "-12.25", -12.3),
        ("number", "abc", None),
        ("number", "nan", None),
        ("integer", "7.0", 7),
        ("integer", True, 1),
        ("boolean", "TRUE", True),
        ("boolean", "no", False),
        ("multi", ["b", "a", "a"], ("a", "b")),
        ("multi", " ; ", None),
        ("enum", " at_risk ", "at_risk"),
        ("datetime", "1748779200000", datetime(2025, 6, 1, 12, tzinfo=UTC)),
        ("datetime", "2025-06-01T12:00:00", datetime(2025, 6, 1, 12, tzinfo=UTC)),
        ("datetime", "not a date", None),
    ],
)
def test_normalise(kind: str, raw: object, expected: object) -> None:
    spec = FieldSpec(
        object="account", logical="x", kind=kind, decimals=1, salesforce="x", hubspot="x", files="x"
    )  # type: ignore[arg-type]
    assert normalise(spec, raw) == expected


def test_datetime_in_another_zone_is_the_same_instant() -> None:
    spec = SPECS["last_response_at"]
    plus2 = datetime(2025, 6, 1, 14, tzinfo=timezone(timedelta(hours=2)))
    assert normalise(spec, plus2) == normalise(spec, "2025-06-01T12:00:00Z")


def test_field_overrides_rename_and_disable() -> None:
    cfg = FieldsConfig(
        overrides={
            "account.nps": FieldOverride(salesforce="NPS_Score__c"),
            "contact.tier": FieldOverride(enabled=False),
        }
    )
    specs = cfg.specs()
    assert {s.salesforce for s in specs if s.logical == "nps"} == {"NPS_Score__c"}
    assert not [s for s in specs if s.object == "contact" and s.logical == "tier"]
    with pytest.raises(ValueError, match=r"unknown field account\.npz"):
        FieldsConfig(overrides={"account.npz": FieldOverride()})


class _Recorder:
    name = "files"
    max_write_batch = 3

    def __init__(self, fail: set[str]) -> None:
        self.fail = fail
        self.batches: list[list[str]] = []

    def write(self, obj: ObjectKind, updates: Sequence[FieldUpdate]) -> list[WriteOutcome]:
        self.batches.append([u.record_id for u in updates])
        return [
            WriteOutcome(
                u.record_id,
                u.record_id not in self.fail,
                "LOCKED" if u.record_id in self.fail else None,
            )
            for u in updates
        ]


def test_execute_sends_full_batches_and_reports_each_batch() -> None:
    connector = _Recorder(fail={"r4"})
    updates = [FieldUpdate(f"r{i}", {"f": i}) for i in range(7)]
    seen: list[int] = []
    counts = execute(connector, "account", updates, lambda b, o: seen.append(len(o)))  # type: ignore[arg-type]
    assert connector.batches == [["r0", "r1", "r2"], ["r3", "r4", "r5"], ["r6"]]
    assert (counts.written, counts.failed, counts.calls) == (6, 1, 3)
    assert counts.failures[0].error_code == "LOCKED"
    assert seen == [3, 3, 1]
