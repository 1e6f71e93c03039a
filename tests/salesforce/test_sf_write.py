"""Writing field updates: value formats, collections packed in Composite, per-record errors."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
import responses
from structlog.testing import capture_logs

from agent.core.ports import FieldUpdate
from connectors.salesforce import DRY_RUN, SalesforceConnector
from connectors.salesforce.write import wire_value
from tests.salesforce.fake import FakeSalesforce


def _accounts(fake: FakeSalesforce, n: int) -> list[str]:
    return [fake.org.insert("Account", {"Name": f"A{i}"}) for i in range(n)]


def _bodies(mock: responses.RequestsMock, method: str) -> list[dict]:
    return [json.loads(c.request.body) for c in mock.calls if c.request.method == method]


@pytest.mark.parametrize(
    ("value", "wire"),
    [
        (12.5, 12.5),
        (7, 7),
        (True, True),
        (False, False),
        ("at_risk", "at_risk"),
        (("executive", "frontline"), "executive;frontline"),
        ((), None),
        (None, None),
        (
            datetime(2024, 5, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))),
            "2024-05-01T12:00:00.000Z",
        ),
        (datetime(2024, 5, 1, 12, 0, 0, 123456), "2024-05-01T12:00:00.123Z"),  # naive: UTC
    ],
)
def test_field_values_are_formatted_for_salesforce(value: object, wire: object) -> None:
    assert wire_value(value) == wire  # type: ignore[arg-type]


def test_non_finite_numbers_are_refused() -> None:
    with pytest.raises(ValueError, match="cannot write"):
        wire_value(math.nan)


def test_small_batch_is_one_collection_updating_only_the_given_fields(
    fake: FakeSalesforce, mock: responses.RequestsMock, connector: SalesforceConnector
) -> None:
    a, b = _accounts(fake, 2)
    fake.org.update("Account", b, {"AX_NPS__c": 40.0, "AX_At_Risk__c": True})
    updates = [
        FieldUpdate(a, {"AX_NPS__c": 12.5, "AX_Tiers_Covered__c": ("executive", "management")}),
        FieldUpdate(b, {"AX_NPS__c": None}),
    ]
    outcomes = connector.write("account", updates)
    assert [(o.record_id, o.ok) for o in outcomes] == [(a, True), (b, True)]
    assert fake.calls["collection"] == 1
    assert fake.calls["composite"] == 0
    assert fake.org.records["Account"][a]["AX_NPS__c"] == 12.5
    assert fake.org.records["Account"][a]["AX_Tiers_Covered__c"] == "executive;management"
    assert fake.org.records["Account"][b]["AX_NPS__c"] is None  # cleared with null
    assert fake.org.records["Account"][b]["AX_At_Risk__c"] is True  # not in the update: untouched
    (body,) = _bodies(mock, "PATCH")
    assert body == {
        "allOrNone": False,
        "records": [
            {
                "attributes": {"type": "Account"},
                "id": a,
                "AX_NPS__c": 12.5,
                "AX_Tiers_Covered__c": "executive;management",
            },
            {"attributes": {"type": "Account"}, "id": b, "AX_NPS__c": None},
        ],
    }


def test_a_full_batch_of_1000_is_one_composite_call_of_five_collections(
    fake: FakeSalesforce, mock: responses.RequestsMock, connector: SalesforceConnector
) -> None:
    assert connector.max_write_batch == 1000
    ids = _accounts(fake, 1000)
    outcomes = connector.write("account", [FieldUpdate(i, {"AX_Respondents__c": 3}) for i in ids])
    assert all(o.ok for o in outcomes)
    assert [o.record_id for o in outcomes] == ids
    assert fake.calls["composite"] == 1
    assert fake.calls["collection"] == 0
    assert connector.client.counter.by_kind["update"] == 1
    assert fake.api_used == 1  # Salesforce counts the Composite request as one call
    (body,) = _bodies(mock, "POST")
    subs = body["compositeRequest"]
    assert [len(s["body"]["records"]) for s in subs] == [200] * 5
    assert {s["url"] for s in subs} == {"/services/data/v62.0/composite/sobjects"}
    assert body["allOrNone"] is False
    assert all(r["AX_Respondents__c"] == 3 for r in fake.org.records["Account"].values())


def test_more_than_a_batch_is_refused(connector: SalesforceConnector) -> None:
    with pytest.raises(ValueError, match="exceed"):
        connector.write("account", [FieldUpdate(str(i), {"AX_NPS__c": 1}) for i in range(1001)])


def test_per_record_failures_carry_salesforce_error_codes(
    fake: FakeSalesforce, connector: SalesforceConnector
) -> None:
    ok, locked, gone, bad = _accounts(fake, 4)
    fake.fail_record(
        locked, "UNABLE_TO_LOCK_ROW", "unable to obtain exclusive access to this record"
    )
    fake.org.delete("Account", gone)
    updates = [
        FieldUpdate(ok, {"AX_Health_Status__c": "healthy"}),
        FieldUpdate(locked, {"AX_Health_Status__c": "healthy"}),
        FieldUpdate(gone, {"AX_Health_Status__c": "healthy"}),
        FieldUpdate(bad, {"AX_Health_Status__c": "superb"}),
        FieldUpdate("001000000099999AAA", {"AX_Health_Status__c": "healthy"}),
    ]
    outcomes = connector.write("account", updates)
    assert [(o.ok, o.error_code) for o in outcomes] == [
        (True, None),
        (False, "UNABLE_TO_LOCK_ROW"),
        (False, "ENTITY_IS_DELETED"),
        (False, "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST"),
        (False, "INVALID_CROSS_REFERENCE_KEY"),
    ]
    assert outcomes[1].message == "unable to obtain exclusive access to this record"
    assert fake.org.records["Account"][ok]["AX_Health_Status__c"] == "healthy"
    assert "AX_Health_Status__c" not in fake.org.records["Account"][bad]


def test_per_record_failures_inside_composite_keep_request_order(
    fake: FakeSalesforce, connector: SalesforceConnector
) -> None:
    ids = _accounts(fake, 450)
    fake.fail_record(ids[333], "FIELD_CUSTOM_VALIDATION_EXCEPTION", "Revenue must be set")
    outcomes = connector.write("account", [FieldUpdate(i, {"AX_NPS__c": 1.0}) for i in ids])
    failed = [(n, o.record_id, o.error_code) for n, o in enumerate(outcomes) if not o.ok]
    assert failed == [(333, ids[333], "FIELD_CUSTOM_VALIDATION_EXCEPTION")]
    assert fake.calls["composite"] == 1


def test_org_refusing_composite_falls_back_to_plain_collections(
    fake: FakeSalesforce, connector: SalesforceConnector
) -> None:
    ids = _accounts(fake, 600)
    fake.refuse_composite = True
    updates = [FieldUpdate(i, {"AX_NPS__c": 5.0}) for i in ids]
    with capture_logs() as logs:
        outcomes = connector.write("account", updates)
        again = connector.write("account", updates)
    assert all(o.ok for o in [*outcomes, *again])
    assert fake.calls["composite"] == 1  # tried once, then remembered
    assert fake.calls["collection"] == 6
    assert [e["event"] for e in logs].count("salesforce_composite_refused") == 1


def test_a_failed_subrequest_is_resent_as_a_plain_collection(
    fake: FakeSalesforce, connector: SalesforceConnector
) -> None:
    ids = _accounts(fake, 400)
    fake.fail("subrequest", 503, [{"errorCode": "SERVER_UNAVAILABLE", "message": "try later"}])
    outcomes = connector.write("account", [FieldUpdate(i, {"AX_NPS__c": 9.0}) for i in ids])
    assert all(o.ok for o in outcomes)
    assert fake.calls["composite"] == 1
    assert fake.calls["collection"] == 1


def test_composite_503_then_success_is_retried_whole(
    fake: FakeSalesforce, connector: SalesforceConnector
) -> None:
    ids = _accounts(fake, 400)
    fake.fail("composite", 503, [{"errorCode": "SERVER_UNAVAILABLE", "message": "try later"}])
    outcomes = connector.write("account", [FieldUpdate(i, {"AX_NPS__c": 9.0}) for i in ids])
    assert all(o.ok for o in outcomes)
    assert fake.calls["composite"] == 2


def test_contacts_are_written_as_contact_records(
    fake: FakeSalesforce, connector: SalesforceConnector
) -> None:
    aid = fake.org.insert("Account", {"Name": "A"})
    cid = fake.org.insert("Contact", {"AccountId": aid, "Name": "C"})
    when = datetime(2024, 3, 1, 9, 30, tzinfo=UTC)
    (outcome,) = connector.write(
        "contact", [FieldUpdate(cid, {"AX_Tier__c": "executive", "AX_Last_Response_At__c": when})]
    )
    assert outcome.ok
    assert fake.org.records["Contact"][cid]["AX_Last_Response_At__c"] == "2024-03-01T09:30:00.000Z"


def test_dry_run_sends_nothing_and_marks_nothing_written(
    fake: FakeSalesforce, build: Callable[..., SalesforceConnector]
) -> None:
    (aid,) = _accounts(fake, 1)
    connector = build(dry_run=True)
    with capture_logs() as logs:
        outcomes = connector.write("account", [FieldUpdate(aid, {"AX_NPS__c": 50.0})])
    assert [(o.ok, o.error_code) for o in outcomes] == [(False, DRY_RUN)]
    assert outcomes[0].message == f'dry run, not sent: Account {aid} {{"AX_NPS__c": 50.0}}'
    assert fake.calls["collection"] + fake.calls["composite"] == 0
    planned = [e for e in logs if e["event"] == "salesforce_write_planned"]
    assert planned[0]["values"]["AX_NPS__c"] == 50.0


def test_the_configured_collection_size_is_the_one_used(
    fake: FakeSalesforce, mock: responses.RequestsMock, build: Callable[..., SalesforceConnector]
) -> None:
    """The settings hold the only default; a configured size changes every request."""
    connector = build(collection_size=3, collections_per_request=2)
    assert connector.max_write_batch == 6
    ids = _accounts(fake, 6)
    outcomes = connector.write("account", [FieldUpdate(i, {"AX_Respondents__c": 1}) for i in ids])
    assert all(o.ok for o in outcomes)
    (body,) = _bodies(mock, "POST")
    assert [len(s["body"]["records"]) for s in body["compositeRequest"]] == [3, 3]
