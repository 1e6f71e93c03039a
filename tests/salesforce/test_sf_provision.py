"""Provisioning custom fields through the Metadata API (SOAP, faked at the HTTP boundary)."""

from __future__ import annotations

import responses

from agent.core.contract import default_field_specs
from connectors.salesforce import SalesforceConnector
from connectors.salesforce.provision import PERMISSION_SET, definitions, provision
from tests.salesforce.fake import FakeSalesforce


def test_definitions_follow_the_field_kinds() -> None:
    defs = {d.name: d for d in definitions(default_field_specs())}
    assert defs["AX_NPS__c"].summary() == "Account.AX_NPS__c                        Number (18, 1)"
    assert defs["AX_Health_Status__c"].metadata_type == "Picklist"
    assert defs["AX_Health_Status__c"].values == ("no_feedback", "healthy", "neutral", "at_risk")
    assert defs["AX_Tiers_Covered__c"].metadata_type == "MultiselectPicklist"
    assert defs["AX_At_Risk__c"].metadata_type == "Checkbox"
    assert defs["AX_Contact_Coverage__c"].metadata_type == "Percent"
    assert {d.sobject for d in defs.values() if d.name == "AX_Last_Response_At__c"} <= {
        "Account",
        "Contact",
    }
    assert len(definitions(default_field_specs())) == len(default_field_specs())


def test_provision_creates_only_missing_fields_and_grants_access(
    fake: FakeSalesforce, mock: responses.RequestsMock, connector: SalesforceConnector
) -> None:
    fake.org.drop_field("Account", "AX_NPS__c")
    fake.org.drop_field("Contact", "AX_Tier__c")
    fake.org.drop_field("Account", "AX_Tiers_Missing__c")
    report = provision(connector.client, default_field_specs())
    assert sorted(report.created) == [
        "Account.AX_NPS__c",
        "Account.AX_Tiers_Missing__c",
        "Contact.AX_Tier__c",
    ]
    assert len(report.existing) == len(default_field_specs()) - 3
    assert report.failed == {}
    assert report.ok
    tier = fake.org.field("Contact", "AX_Tier__c")
    assert tier is not None
    assert (tier.type, tier.restricted) == ("picklist", True)
    assert tier.picklist == ("executive", "frontline", "management", "unknown")
    assert fake.org.field("Account", "AX_NPS__c").scale == 1  # type: ignore[union-attr]
    assert fake.org.field("Account", "AX_Tiers_Missing__c").type == "multipicklist"  # type: ignore[union-attr]
    granted = fake.metadata["permission_sets"][PERMISSION_SET]
    assert len(granted) == len(default_field_specs())
    assert "Contact.AX_Tier__c" in granted
    assert connector.check_fields(default_field_specs()) == []
    # The SOAP requests carried the session in the SessionHeader.
    soap = [c.request for c in mock.calls if "/services/Soap/m/" in c.request.url]
    assert all(b"fake-session" in r.body for r in soap)


def test_fields_hidden_from_the_integration_user_are_not_created_again(
    fake: FakeSalesforce, mock: responses.RequestsMock, connector: SalesforceConnector
) -> None:
    fake.org.drop_field("Account", "AX_NPS__c")
    fake.metadata["hidden_fields"].add("Account.AX_NPS__c")  # exists, but no field-level access
    report = provision(connector.client, default_field_specs())
    assert report.created == []
    assert "Account.AX_NPS__c" in report.existing
    assert "Account.AX_NPS__c" in fake.metadata["permission_sets"][PERMISSION_SET]


def test_a_field_salesforce_refuses_is_reported_by_name(
    fake: FakeSalesforce, mock: responses.RequestsMock, connector: SalesforceConnector
) -> None:
    fake.org.drop_field("Account", "AX_NPS__c")
    fake.org.drop_field("Account", "AX_At_Risk__c")
    fake.metadata["create_errors"]["Account.AX_NPS__c"] = (
        "LIMIT_EXCEEDED",
        "You have reached the maximum number of custom fields of type Number",
    )
    report = provision(connector.client, default_field_specs())
    assert report.created == ["Account.AX_At_Risk__c"]
    assert "LIMIT_EXCEEDED" in report.failed["Account.AX_NPS__c"]
    assert not report.ok
    assert "Account.AX_NPS__c" not in fake.metadata["permission_sets"][PERMISSION_SET]


SOAP_FAULT = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
    'xmlns:sf="http://soap.sforce.com/2006/04/metadata">'
    "<soapenv:Body><soapenv:Fault><faultcode>sf:INVALID_SESSION_ID</faultcode>"
    "<faultstring>INVALID_SESSION_ID: Invalid Session ID found in SessionHeader: "
    "Illegal Session</faultstring></soapenv:Fault></soapenv:Body></soapenv:Envelope>"
)


def test_a_metadata_api_fault_stops_provisioning_with_salesforces_words(
    fake: FakeSalesforce, mock: responses.RequestsMock, connector: SalesforceConnector
) -> None:
    import pytest

    from connectors.salesforce.errors import SalesforceFatalError

    fake.fail("metadata", 500, SOAP_FAULT)
    with pytest.raises(SalesforceFatalError, match="INVALID_SESSION_ID"):
        provision(connector.client, default_field_specs())
    assert fake.metadata["created"] == []
