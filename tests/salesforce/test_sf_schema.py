"""Start-up checks through describe: every mapped field present, updateable, compatible."""

from __future__ import annotations

from collections.abc import Callable

from agent.core.contract import FieldOverride, FieldsConfig, default_field_specs
from connectors.salesforce import SalesforceConnector
from tests.salesforce.fake import FakeField, FakeSalesforce


def test_a_provisioned_org_has_no_problems(
    fake: FakeSalesforce, connector: SalesforceConnector
) -> None:
    assert connector.check_fields(default_field_specs()) == []
    assert fake.calls["describe"] == 2  # Account and Contact, once each


def test_describe_is_done_once_for_checking_and_reading(
    fake: FakeSalesforce, connector: SalesforceConnector
) -> None:
    connector.check_fields(default_field_specs())
    list(connector.read_accounts(None))
    list(connector.read_contacts(None))
    assert fake.calls["describe"] == 2


def test_missing_field_is_named_with_the_provision_command(
    fake: FakeSalesforce, connector: SalesforceConnector
) -> None:
    fake.org.drop_field("Account", "AX_NPS__c")
    (problem,) = connector.check_fields(default_field_specs())
    assert (problem.object, problem.field) == ("account", "AX_NPS__c")
    assert "does not exist on Account" in problem.problem
    assert "ax-agent crm provision salesforce" in problem.fix
    assert "AX_NPS__c" in str(problem)


def test_read_only_and_wrongly_typed_fields_are_reported(
    fake: FakeSalesforce, connector: SalesforceConnector
) -> None:
    fake.org.add_field("Account", FakeField("AX_NPS__c", "double", updateable=False, custom=True))
    fake.org.add_field("Contact", FakeField("AX_Last_Response_At__c", "date", custom=True))
    problems = {p.field: p for p in connector.check_fields(default_field_specs())}
    assert set(problems) == {"AX_NPS__c", "AX_Last_Response_At__c"}
    assert "read-only" in problems["AX_NPS__c"].problem
    assert "field-level security" in problems["AX_NPS__c"].fix
    assert "type date" in problems["AX_Last_Response_At__c"].problem
    assert "datetime" in problems["AX_Last_Response_At__c"].problem
    assert "contact.last_response_at" in problems["AX_Last_Response_At__c"].fix


def test_restricted_picklist_without_the_agents_values_is_reported(
    fake: FakeSalesforce, connector: SalesforceConnector
) -> None:
    fake.org.add_field(
        "Account",
        FakeField(
            "AX_Health_Status__c", "picklist", custom=True, picklist=("healthy",), restricted=True
        ),
    )
    (problem,) = connector.check_fields(default_field_specs())
    assert problem.field == "AX_Health_Status__c"
    assert "no_feedback, neutral, at_risk" in problem.problem


def test_field_names_match_case_insensitively_and_overrides_are_checked(
    fake: FakeSalesforce, connector: SalesforceConnector
) -> None:
    fields = FieldsConfig(overrides={"account.nps": FieldOverride(salesforce="ax_nps__C")})
    assert connector.check_fields(fields.specs()) == []
    fields = FieldsConfig(overrides={"account.nps": FieldOverride(salesforce="Account_NPS__c")})
    (problem,) = connector.check_fields(fields.specs())
    assert problem.field == "Account_NPS__c"


def test_misconfigured_read_fields_name_the_setting(
    fake: FakeSalesforce, build: Callable[..., SalesforceConnector]
) -> None:
    connector = build(revenue_field="ARR__c", potential_field="Name", tier_field="Level__c")
    problems = {p.field: p for p in connector.check_fields(default_field_specs())}
    assert set(problems) == {"ARR__c", "Name", "Level__c"}
    assert "salesforce.revenue_field" in problems["ARR__c"].fix
    assert "not a number" in problems["Name"].problem
    assert problems["Level__c"].object == "contact"
