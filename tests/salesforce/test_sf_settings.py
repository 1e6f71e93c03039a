"""The salesforce block of the configuration: YAML for settings, env for secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config.settings import ConfigError, load_settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    for name in ("AX_CONFIG", "AX_SECRETS_FILE"):
        monkeypatch.delenv(name, raising=False)


def test_yaml_settings_with_secrets_from_a_secrets_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "ax-agent.yaml"
    config.write_text(
        "crm: salesforce\n"
        "salesforce:\n"
        "  domain: test\n"
        "  revenue_field: ARR__c\n"
        "  extra_fields: [Industry, Region__c]\n"
        "  budget_run_share: 0.1\n"
        "  survey:\n"
        "    source: surveys\n"
        "    question_id: 0Qq000000000001AAA\n"
    )
    secrets = tmp_path / "secrets.env"
    secrets.write_text(
        "AX_SALESFORCE__USERNAME=int@acme.example\n"
        "AX_SALESFORCE__PASSWORD=pw\n"
        "AX_SALESFORCE__SECURITY_TOKEN=tok\n"
    )
    monkeypatch.setenv("AX_SECRETS_FILE", str(secrets))
    sf = load_settings(config).salesforce
    assert (sf.domain, sf.revenue_field, sf.extra_fields) == (
        "test",
        "ARR__c",
        ["Industry", "Region__c"],
    )
    assert sf.password is not None
    assert sf.password.get_secret_value() == "pw"
    assert sf.survey.question_id == "0Qq000000000001AAA"
    assert sf.budget_run_share == 0.1
    assert "pw" not in repr(sf.password)


def test_a_mistyped_key_is_named(tmp_path: Path) -> None:
    config = tmp_path / "ax-agent.yaml"
    config.write_text("salesforce:\n  revenu_field: ARR__c\n  collection_size: 500\n")
    with pytest.raises(ConfigError) as err:
        load_settings(config)
    assert "salesforce.revenu_field" in str(err.value)
    assert "salesforce.collection_size" in str(err.value)
