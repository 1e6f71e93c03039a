"""Settings: validated once at start, errors by key path, secrets never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.config.settings import ConfigError, load_settings


def test_defaults_follow_domain(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no config/ax-agent.yaml here
    settings = load_settings()
    assert settings.crm == "files"
    assert settings.metrics.window_days == 365
    assert settings.metrics.loop_sla_hours == 48
    assert settings.metrics.misalignment_spread == 50
    assert "gmx.de" in settings.metrics.free_mail_domains


def test_yaml_file_then_env_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text("metrics:\n  window_days: 180\nfiles:\n  path: data/crm\n", encoding="utf-8")
    monkeypatch.setenv("AX_METRICS__LOOP_SLA_HOURS", "24")
    settings = load_settings(config)
    assert settings.metrics.window_days == 180
    assert settings.metrics.loop_sla_hours == 24
    assert settings.files.path == Path("data/crm")


def test_invalid_value_names_key_path_and_file(tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text(
        "metrics:\n  window_days: -3\n  health:\n    healthy_at: high\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError) as err:
        load_settings(config)
    text = str(err.value)
    assert str(config) in text
    assert "metrics.window_days: Input should be greater than 0" in text
    assert "metrics.health.healthy_at" in text


def test_unknown_key_is_rejected(tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text("metrics:\n  windw_days: 10\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"metrics\.windw_days: Extra inputs are not permitted"):
        load_settings(config)


def test_bad_tier_regex_is_explained(tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text(
        "metrics:\n  tier_patterns:\n    - {tier: executive, pattern: '(ceo'}\n", encoding="utf-8"
    )
    with pytest.raises(ConfigError, match="not a valid regular expression"):
        load_settings(config)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.yaml")


def test_secrets_file_and_no_secret_in_repr(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secrets = tmp_path / "secrets.env"
    secrets.write_text("AX_SLACK__BOT_TOKEN=xoxb-very-secret\n", encoding="utf-8")
    monkeypatch.setenv("AX_SECRETS_FILE", str(secrets))
    monkeypatch.chdir(tmp_path)
    settings = load_settings()
    assert settings.slack.bot_token is not None
    assert settings.slack.bot_token.get_secret_value() == "xoxb-very-secret"
    assert "xoxb-very-secret" not in repr(settings)
    assert "xoxb-very-secret" not in str(settings.model_dump())


def test_shipped_config_is_valid_and_states_the_defaults() -> None:
    """config/ax-agent.yaml documents every block with its default value."""
    from agent.config.settings import Settings

    shipped = load_settings(Path(__file__).parent.parent / "config" / "ax-agent.yaml")
    defaults = Settings()
    assert shipped.files.path == Path("ax-demo/crm")  # where `ax-agent demo` puts its sample
    blocks = ("metrics", "fields", "salesforce", "hubspot", "slack", "tasks", "log", "report")
    for block in (*blocks, "schedule", "server", "webhook", "file_drop"):
        assert getattr(shipped, block) == getattr(defaults, block), block


def test_a_secret_in_the_yaml_file_is_refused_without_echoing_it(tmp_path: Path) -> None:
    config = tmp_path / "agent.yaml"
    config.write_text(
        "salesforce:\n  password: hunter2-not-here\nwebhook:\n  secret: also-not-here\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as err:
        load_settings(config)
    text = str(err.value)
    assert "salesforce.password (AX_SALESFORCE__PASSWORD)" in text
    assert "webhook.secret (AX_WEBHOOK__SECRET)" in text
    assert "hunter2-not-here" not in text
    assert "also-not-here" not in text
