"""Which CRM page an account name links to, per CRM and configuration."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from agent.config.settings import ConfigError, Settings, load_settings
from agent.report.links import record_link, record_url_template


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("AX_CONFIG", "AX_SECRETS_FILE", "AX_CRM"):
        monkeypatch.delenv(name, raising=False)


def _settings(**overrides: object) -> Settings:
    return load_settings(None, **overrides)


def test_salesforce_links_to_the_lightning_record_page() -> None:
    settings = _settings(
        crm="salesforce", salesforce={"instance_url": "https://acme.my.salesforce.com/"}
    )
    template = record_url_template(settings)
    assert template == "https://acme.my.salesforce.com/lightning/r/Account/{id}/view"
    assert record_link(template, "001A000001") == (
        "https://acme.my.salesforce.com/lightning/r/Account/001A000001/view"
    )


def test_salesforce_without_an_instance_url_has_no_links() -> None:
    assert record_url_template(_settings(crm="salesforce")) is None


def test_hubspot_links_to_the_company_record_of_the_portal() -> None:
    settings = _settings(crm="hubspot", report={"hubspot_portal_id": "4815162"})
    template = record_url_template(settings)
    assert record_link(template, "9001") == "https://app.hubspot.com/contacts/4815162/company/9001"
    assert record_url_template(_settings(crm="hubspot")) is None


def test_files_crm_has_no_record_pages() -> None:
    assert record_url_template(_settings(crm="files")) is None
    assert record_link(None, "A1") is None


def test_the_shared_link_template_wins_for_every_crm() -> None:
    template = "https://crm.example/accounts/{id}"
    for crm in ("files", "salesforce", "hubspot"):
        settings = _settings(
            crm=crm,
            slack={"crm_url_template": template},
            salesforce={"instance_url": "https://acme.my.salesforce.com"},
        )
        assert record_url_template(settings) == template


def test_a_template_that_is_not_a_web_link_is_ignored_with_a_warning() -> None:
    settings = _settings(slack={"crm_url_template": "javascript:alert('{id}')"})
    with capture_logs() as logs:
        assert record_url_template(settings) is None
    assert [e["event"] for e in logs] == ["report.link_template_ignored"]


def test_ids_are_encoded_as_one_path_segment() -> None:
    assert record_link("https://crm.example/{id}/view", "a/b c#d") == (
        "https://crm.example/a%2Fb%20c%23d/view"
    )


def test_report_settings_are_validated_with_their_key_path(tmp_path: Path) -> None:
    config = tmp_path / "ax.yaml"
    config.write_text("report:\n  top_accounts: 0\n  colour: blue\n")
    with pytest.raises(ConfigError) as raised:
        load_settings(config)
    message = str(raised.value)
    assert "report.top_accounts" in message
    assert "report.colour" in message
    defaults = _settings().report
    assert (defaults.top_accounts, defaults.list_limit, defaults.hubspot_portal_id) == (
        25,
        100,
        None,
    )
