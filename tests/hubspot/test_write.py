"""Batch write-back: HubSpot's value formats, 200/207 outcomes, bad values isolated."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest

from agent.core.ports import FieldUpdate
from connectors.common.errors import FatalError
from connectors.hubspot import HubSpotConnector
from tests.hubspot.fakeportal import FakePortal
from tests.hubspot.harness import provision_all

MakeConnector = Callable[..., HubSpotConnector]
UPDATE = "/crm/v3/objects/companies/batch/update"


@pytest.fixture
def provisioned(portal: FakePortal) -> FakePortal:
    provision_all(portal)
    return portal


def test_values_go_over_the_wire_as_hubspot_strings(
    provisioned: FakePortal, make_connector: MakeConnector
) -> None:
    company = provisioned.add_company(name="Acme", ax_nps_strict="12")
    update = FieldUpdate(
        company,
        {
            "ax_health_score": 71.0,
            "ax_nps": 33.3,
            "ax_nps_strict": None,
            "ax_respondents": 4,
            "ax_at_risk": False,
            "ax_upsell_candidate": True,
            "ax_tiers_covered": ("executive", "management"),
            "ax_health_status": "healthy",
            "ax_last_response_at": datetime(2026, 2, 1, 10, 0, tzinfo=timezone(timedelta(hours=2))),
        },
    )

    [outcome] = make_connector().write("account", [update])

    assert outcome.ok
    [call] = provisioned.calls("POST", UPDATE)
    assert call.body == {
        "inputs": [
            {
                "id": company,
                "properties": {
                    "ax_health_score": "71",
                    "ax_nps": "33.3",
                    "ax_nps_strict": "",
                    "ax_respondents": "4",
                    "ax_at_risk": "false",
                    "ax_upsell_candidate": "true",
                    "ax_tiers_covered": "executive;management",
                    "ax_health_status": "healthy",
                    "ax_last_response_at": "2026-02-01T08:00:00.000Z",
                },
            }
        ]
    }
    assert provisioned.value("companies", company, "ax_nps_strict") is None
    assert provisioned.value("companies", company, "ax_nps") == "33.3"


def test_contacts_are_written_to_the_contacts_endpoint(
    provisioned: FakePortal, make_connector: MakeConnector
) -> None:
    contact = provisioned.add_contact(email="a@b.com")
    [outcome] = make_connector().write("contact", [FieldUpdate(contact, {"ax_tier": "executive"})])
    assert outcome.ok
    assert provisioned.value("contacts", contact, "ax_tier") == "executive"
    assert len(provisioned.calls("POST", "/crm/v3/objects/contacts/batch/update")) == 1


def test_one_call_per_batch_of_a_hundred(
    provisioned: FakePortal, make_connector: MakeConnector
) -> None:
    ids = [provisioned.add_company(name=str(i)) for i in range(100)]
    connector = make_connector()
    outcomes = connector.write("account", [FieldUpdate(i, {"ax_respondents": 1}) for i in ids])
    assert [o.record_id for o in outcomes] == ids
    assert all(o.ok for o in outcomes)
    assert len(provisioned.calls("POST", UPDATE)) == 1
    assert connector.calls.by_kind["companies.update"] == 1


def test_more_than_a_batch_is_refused_before_any_call(
    provisioned: FakePortal, make_connector: MakeConnector
) -> None:
    connector = make_connector()
    assert connector.max_write_batch == 100
    with pytest.raises(ValueError, match="at most 100"):
        connector.write("account", [FieldUpdate(str(i), {"ax_nps": 1.0}) for i in range(101)])
    assert provisioned.calls("POST", UPDATE) == []


def test_multi_status_reports_each_missing_record(
    provisioned: FakePortal, make_connector: MakeConnector
) -> None:
    good = provisioned.add_company(name="Good")
    outcomes = make_connector().write(
        "account", [FieldUpdate(good, {"ax_nps": 10.0}), FieldUpdate("999999", {"ax_nps": 20.0})]
    )
    assert [(o.record_id, o.ok, o.error_code) for o in outcomes] == [
        (good, True, None),
        ("999999", False, "OBJECT_NOT_FOUND"),
    ]
    assert "deleted or not exist" in (outcomes[1].message or "")


def test_an_invalid_value_is_isolated_and_the_rest_written(
    provisioned: FakePortal, make_connector: MakeConnector
) -> None:
    ids = [provisioned.add_company(name=str(i)) for i in range(8)]
    updates = [FieldUpdate(i, {"ax_health_status": "healthy"}) for i in ids]
    updates[5] = FieldUpdate(ids[5], {"ax_health_status": "ecstatic"})

    outcomes = make_connector().write("account", updates)

    assert [o.ok for o in outcomes] == [True] * 5 + [False] + [True] * 2
    assert outcomes[5].error_code == "VALIDATION_ERROR"
    assert "INVALID_OPTION" in (outcomes[5].message or "")
    assert [provisioned.value("companies", i, "ax_health_status") for i in ids] == (
        ["healthy"] * 5 + [None] + ["healthy"] * 2
    )
    # 1 rejected batch of 8, then halves of 4+4, 2+2 and 1+1 around the bad record.
    assert len(provisioned.calls("POST", UPDATE)) == 7


def test_a_record_the_response_does_not_mention_is_not_reported_written(
    provisioned: FakePortal, make_connector: MakeConnector
) -> None:
    a, b = provisioned.add_company(name="a"), provisioned.add_company(name="b")
    now = "2026-03-01T12:00:00.000Z"
    body = {
        "status": "COMPLETE",
        "results": [provisioned.render("companies", provisioned.stores["companies"].live[a], [])],
        "startedAt": now,
        "completedAt": now,
    }
    provisioned.fail("POST", UPDATE, 200, body=body)
    outcomes = make_connector().write(
        "account", [FieldUpdate(a, {"ax_nps": 1.0}), FieldUpdate(b, {"ax_nps": 2.0})]
    )
    assert [(o.ok, o.error_code) for o in outcomes] == [(True, None), (False, "NOT_CONFIRMED")]


def test_preview_shows_the_request_without_sending_it(
    provisioned: FakePortal, make_connector: MakeConnector
) -> None:
    preview = make_connector().preview(
        "contact", [FieldUpdate("5", {"ax_last_score": 9, "ax_tier": None})]
    )
    assert preview == {
        "method": "POST",
        "path": "/crm/v3/objects/contacts/batch/update",
        "body": {"inputs": [{"id": "5", "properties": {"ax_last_score": "9", "ax_tier": ""}}]},
    }
    assert provisioned.requests == []


def test_an_empty_batch_makes_no_call(
    provisioned: FakePortal, make_connector: MakeConnector
) -> None:
    assert make_connector().write("account", []) == []
    assert provisioned.requests == []


def test_written_datetimes_read_back_equal(
    provisioned: FakePortal, make_connector: MakeConnector
) -> None:
    company = provisioned.add_company(name="A")
    when = datetime(2026, 2, 3, 4, 5, 6, 789000, tzinfo=UTC)
    connector = make_connector()
    connector.write(
        "account", [FieldUpdate(company, {"ax_last_response_at": when, "ax_nps": -12.5})]
    )
    [batch] = list(connector.read_accounts(None))
    values = batch.records[0].crm_values
    assert values["ax_last_response_at"] == when
    assert values["ax_nps"] == -12.5


def test_a_missing_property_stops_the_write_without_splitting(
    provisioned: FakePortal, make_connector: MakeConnector
) -> None:
    ids = [provisioned.add_company(name=str(i)) for i in range(4)]
    with pytest.raises(FatalError, match="PROPERTY_DOESNT_EXIST"):
        make_connector().write("account", [FieldUpdate(i, {"ax_no_such": 1.0}) for i in ids])
    assert len(provisioned.calls("POST", UPDATE)) == 1
