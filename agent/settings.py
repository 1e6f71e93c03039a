"""Settings: where things are, credentials, cadences. Not rules, not metrics logic.

Sources, highest priority first: environment variables (prefix ``AX_``, nested keys
joined by ``__``, e.g. ``AX_SALESFORCE__PASSWORD``), a secrets file in dotenv format
(``AX_SECRETS_FILE``), then the YAML config file (``--config`` or ``AX_CONFIG``,
default ``config/ax-agent.yaml`` when present). Secrets are ``SecretStr``: they never
print, and they belong in the environment or the secrets file, not in the YAML.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from agent.config import FieldsConfig, MetricsConfig

__all__ = [
    "ConfigError",
    "FilesSettings",
    "HubSpotSettings",
    "LogSettings",
    "SalesforceSettings",
    "Settings",
    "SlackSettings",
    "load_settings",
]

DEFAULT_CONFIG = Path("config/ax-agent.yaml")


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FilesSettings(_Block):
    """The plain-file CRM folder (DOMAIN.md's format); write-back goes beside it."""

    path: Path = Path("crm")


class SalesforceSettings(_Block):
    username: str | None = None
    password: SecretStr | None = None
    security_token: SecretStr | None = None
    consumer_key: str | None = None
    private_key_file: Path | None = None
    session_id: SecretStr | None = None
    instance_url: str | None = None
    domain: str = "login"
    api_version: str = "62.0"
    revenue_field: str = "AnnualRevenue"
    potential_field: str | None = None
    tier_field: str | None = None
    extra_fields: list[str] = Field(default_factory=list)


class HubSpotSettings(_Block):
    access_token: SecretStr | None = None
    base_url: str = "https://api.hubapi.com"
    revenue_property: str = "annualrevenue"
    potential_property: str | None = None
    tier_property: str | None = None
    extra_properties: list[str] = Field(default_factory=list)


class SlackSettings(_Block):
    bot_token: SecretStr | None = None
    base_url: str = "https://slack.com/api/"
    default_channel: str | None = None


class LogSettings(_Block):
    """Log level and format: ``auto`` is JSON lines unless stderr is a terminal."""

    level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class Settings(BaseSettings):
    """Everything the agent is configured with; validated once at start-up."""

    model_config = SettingsConfigDict(
        env_prefix="AX_", env_nested_delimiter="__", extra="forbid", validate_default=True
    )

    crm: Literal["files", "salesforce", "hubspot"] = "files"
    state_url: str = "sqlite:///ax-state.db"
    rules_dir: Path = Path("rules")
    files: FilesSettings = FilesSettings()
    salesforce: SalesforceSettings = SalesforceSettings()
    hubspot: HubSpotSettings = HubSpotSettings()
    slack: SlackSettings = SlackSettings()
    log: LogSettings = LogSettings()
    metrics: MetricsConfig = MetricsConfig()
    fields: FieldsConfig = FieldsConfig()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        yaml_file = _CONFIG_FILE.get("path")
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings, dotenv_settings]
        if yaml_file is not None:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=yaml_file))
        return tuple(sources)


_CONFIG_FILE: dict[str, Path | None] = {"path": None}


class ConfigError(Exception):
    """Invalid configuration, explained by key path for a CRM admin."""


def load_settings(config: Path | None = None, **overrides: Any) -> Settings:
    """Validate the whole configuration once; raise ``ConfigError`` naming each bad key."""
    path = config or _env_path("AX_CONFIG") or (DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None)
    if path is not None and not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    secrets = _env_path("AX_SECRETS_FILE")
    if secrets is not None and not secrets.is_file():
        raise ConfigError(f"secrets file {secrets} (AX_SECRETS_FILE) does not exist")
    _CONFIG_FILE["path"] = path
    try:
        return Settings(_env_file=secrets, **overrides)  # type: ignore[call-arg]  # pydantic-settings init kwarg
    except ValidationError as exc:
        raise ConfigError(_explain(exc, path)) from None
    finally:
        _CONFIG_FILE["path"] = None


def _env_path(name: str) -> Path | None:
    value = os.environ.get(name)
    return Path(value) if value else None


def _explain(exc: ValidationError, path: Path | None) -> str:
    where = f"in {path}" if path else "in the environment"
    lines = [f"invalid configuration {where}:"]
    for err in exc.errors(include_url=False, include_input=False):
        key = ".".join(str(p) for p in err["loc"]) or "(top level)"
        lines.append(f"  {key}: {err['msg']}")
    return "\n".join(lines)
