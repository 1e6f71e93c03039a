"""HubSpot settings: secrets from the environment or the secrets file, limits validated."""

from __future__ import annotations

from pathlib import Path

import pytest
from structlog.testing import capture_logs

from agent.config.settings import ConfigError, load_settings
from tests.hubspot.fakeportal import FakePortal
from tests.hubspot.harness import build_connector


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("AX_CONFIG", "AX_SECRETS_FILE", "AX_HUBSPOT__ACCESS_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_token_from_the_secrets_file_and_blocks_from_yaml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    secrets = tmp_path / "secrets.env"
    secrets.write_text("AX_HUBSPOT__ACCESS_TOKEN=pat-eu1-secret\n")
    config = tmp_path / "ax.yaml"
    config.write_text(
        "crm: hubspot\nhubspot:\n  base_url: https://api-eu1.hubapi.com\n  burst_limit: 190\n"
        "  surveys:\n    enabled: true\n    driver_property: main_reason\n"
    )
    monkeypatch.setenv("AX_SECRETS_FILE", str(secrets))
    settings = load_settings(config)
    hubspot = settings.hubspot
    assert hubspot.access_token is not None
    assert hubspot.access_token.get_secret_value() == "pat-eu1-secret"
    assert "pat-eu1-secret" not in repr(settings)
    assert (hubspot.base_url, hubspot.burst_limit) == ("https://api-eu1.hubapi.com", 190)
    assert hubspot.surveys.enabled
    assert hubspot.surveys.driver_property == "main_reason"


def test_limits_beyond_hubspots_are_refused_by_key(tmp_path: Path) -> None:
    config = tmp_path / "ax.yaml"
    config.write_text(
        "hubspot:\n  list_page_size: 500\n  search_page_size: 0\n  surveys:\n    enabld: true\n"
    )
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    message = str(caught.value)
    assert "hubspot.list_page_size" in message
    assert "hubspot.search_page_size" in message
    assert "hubspot.surveys.enabld" in message


def test_each_read_logs_one_summary_without_the_token(portal: FakePortal, base_url: str) -> None:
    portal.add_company(name="A")
    connector = build_connector(portal, base_url)
    with capture_logs() as logs:
        list(connector.read_accounts(None))
    [summary] = [e for e in logs if e["event"] == "hubspot_read"]
    assert (summary["object"], summary["records"], summary["incremental"]) == ("account", 1, False)
    assert portal.token not in repr(logs)
