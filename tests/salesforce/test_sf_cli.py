"""``ax-agent crm provision|check salesforce`` end to end against the fake org."""

from __future__ import annotations

import pytest
import responses
from typer.testing import CliRunner

from agent.cli import app
from tests.salesforce.fake import FakeSalesforce

runner = CliRunner()


@pytest.fixture(autouse=True)
def _env(monkeypatch: pytest.MonkeyPatch, tmp_path, fake: FakeSalesforce) -> None:
    monkeypatch.chdir(tmp_path)  # no stray config/ax-agent.yaml
    for name in ("AX_CONFIG", "AX_SECRETS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AX_SALESFORCE__SESSION_ID", "fake-session")
    monkeypatch.setenv("AX_SALESFORCE__INSTANCE_URL", fake.instance_url)


def test_print_lists_fields_without_calling_salesforce(mock: responses.RequestsMock) -> None:
    result = runner.invoke(app, ["crm", "provision", "salesforce", "--print"])
    assert result.exit_code == 0, result.output
    assert "Account.AX_NPS__c" in result.output
    assert "Number (18, 1)" in result.output
    assert len(mock.calls) == 0


def test_check_reports_missing_fields_then_provision_fixes_them(
    fake: FakeSalesforce, mock: responses.RequestsMock
) -> None:
    fake.org.drop_field("Account", "AX_NPS__c")
    fake.org.drop_field("Contact", "AX_Tier__c")
    check = runner.invoke(app, ["crm", "check", "salesforce"])
    assert check.exit_code == 1
    assert "2 field problem(s)" in check.output
    assert "account field AX_NPS__c" in check.output
    assert "ax-agent crm provision salesforce" in check.output
    assert "Task field AX_Alert_Key__c is missing" in check.output

    done = runner.invoke(app, ["crm", "provision", "salesforce"])
    assert done.exit_code == 0, done.output
    assert "created (3):" in done.output
    assert "Activity.AX_Alert_Key__c" in done.output
    assert "Assign permission set AX_Agent_Fields" in done.output

    again = runner.invoke(app, ["crm", "check", "salesforce"])
    assert again.exit_code == 0, again.output
    assert "all 19 fields are present" in again.output
    assert "salesforce: tasks can be created" in again.output


def test_unknown_crm_and_missing_credentials_exit_with_a_message(
    monkeypatch: pytest.MonkeyPatch, mock: responses.RequestsMock
) -> None:
    unknown = runner.invoke(app, ["crm", "check", "pipedrive"])
    assert unknown.exit_code == 2
    assert "unknown CRM 'pipedrive'" in unknown.output
    monkeypatch.delenv("AX_SALESFORCE__SESSION_ID")
    missing = runner.invoke(app, ["crm", "check", "salesforce"])
    assert missing.exit_code == 2
    assert "AX_SALESFORCE__USERNAME" in missing.output


def test_vendor_errors_exit_1_without_a_traceback(
    fake: FakeSalesforce, mock: responses.RequestsMock
) -> None:
    fake.expire_sessions()
    result = runner.invoke(app, ["crm", "check", "salesforce"])
    assert result.exit_code == 1
    assert "session expired or invalid" in result.output
    assert "Traceback" not in result.output


def test_survey_next_is_provisioned_and_checked_once_the_plan_writes_back(
    monkeypatch: pytest.MonkeyPatch, mock: responses.RequestsMock
) -> None:
    monkeypatch.setenv("AX_PLAN__WRITE_BACK", "true")
    shown = runner.invoke(app, ["crm", "provision", "salesforce", "--print"])
    assert "Contact.AX_Survey_Next__c" in shown.output
    assert "Checkbox" in shown.output.split("Contact.AX_Survey_Next__c")[1].splitlines()[0]

    check = runner.invoke(app, ["crm", "check", "salesforce"])
    assert check.exit_code == 1
    assert "contact field AX_Survey_Next__c" in check.output
    done = runner.invoke(app, ["crm", "provision", "salesforce"])
    assert "created (2):" in done.output  # with the alert key of the agent's tasks
    assert "Contact.AX_Survey_Next__c" in done.output
    again = runner.invoke(app, ["crm", "check", "salesforce"])
    assert again.exit_code == 0, again.output
    assert "all 20 fields are present" in again.output


def test_history_fields_are_provisioned_and_checked_once_history_writes_back(
    monkeypatch: pytest.MonkeyPatch, mock: responses.RequestsMock
) -> None:
    monkeypatch.setenv("AX_HISTORY__WRITE_BACK", "true")
    shown = runner.invoke(app, ["crm", "provision", "salesforce", "--print"])
    trend = shown.output.split("Account.AX_Health_Trend_30d__c")[1].splitlines()[0]
    since = shown.output.split("Account.AX_Health_Status_Since__c")[1].splitlines()[0]
    assert "Number" in trend
    assert "DateTime" in since
    check = runner.invoke(app, ["crm", "check", "salesforce"])
    assert check.exit_code == 1
    assert "account field AX_Health_Trend_30d__c" in check.output
    done = runner.invoke(app, ["crm", "provision", "salesforce"])
    assert "created (3):" in done.output  # with the alert key of the agent's tasks
    again = runner.invoke(app, ["crm", "check", "salesforce"])
    assert again.exit_code == 0, again.output
    assert "all 21 fields are present" in again.output
