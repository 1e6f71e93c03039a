"""Settings: where things are, credentials, cadences. Not rules, not metrics logic.

Sources, highest priority first: environment variables (prefix ``AX_``, nested keys
joined by ``__``, e.g. ``AX_SALESFORCE__PASSWORD``), a secrets file in dotenv format
(``AX_SECRETS_FILE``), then the YAML config file (``--config`` or ``AX_CONFIG``,
default ``config/ax-agent.yaml`` when present). Secrets are ``SecretStr``: they never
print, and they belong in the environment or the secrets file, not in the YAML.
"""

from __future__ import annotations

import os
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from agent.config.service import (
    FileDropSettings,
    ScheduleSettings,
    ServerSettings,
    WebhookSettings,
)
from agent.core.contract import FieldOverride, FieldsConfig, MetricsConfig
from agent.core.errors import ConfigError
from connectors.hubspot.settings import HubSpotSettings, HubSpotSurveySettings
from connectors.salesforce.settings import SalesforceSettings, SalesforceSurveySettings
from connectors.slack.settings import SlackSettings

__all__ = [
    "ConfigError",
    "FilesSettings",
    "HistorySettings",
    "HubSpotSettings",
    "HubSpotSurveySettings",
    "LogSettings",
    "PlanSettings",
    "ReportSettings",
    "SalesforceSettings",
    "SalesforceSurveySettings",
    "Settings",
    "SlackSettings",
    "TasksSettings",
    "load_settings",
    "secret_keys",
]

DEFAULT_CONFIG = Path("config/ax-agent.yaml")


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FilesSettings(_Block):
    """The plain-file CRM folder (DOMAIN.md's format); write-back goes beside it."""

    path: Path = Path("crm")


class TasksSettings(_Block):
    """CRM tasks made by rules with a ``task:`` action (docs/rules.md, "CRM tasks").

    ``fallback_owner_email``: who gets a task whose account owner the CRM does not
    know (no ``owner_email``, no such user, or an inactive one); unset, the task is
    left to the CRM's default owner (Salesforce: the integration user; HubSpot: none).
    """

    enabled: bool = True
    fallback_owner_email: str | None = Field(default=None, pattern=r"^[^@\s]+@[^@\s]+$")
    #: Tasks per create call at most (the connector's own maximum applies too).
    batch_size: int = Field(default=1000, ge=1, le=1000)


class LogSettings(_Block):
    """Log level and format: ``auto`` is JSON lines unless stderr is a terminal."""

    level: Literal["debug", "info", "warning", "error", "critical"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class ReportSettings(_Block):
    """The HTML report (``ax-agent report``).

    Account names link to their CRM records through ``slack.crm_url_template`` when
    set; otherwise the link follows from the CRM: Salesforce from
    ``salesforce.instance_url``, HubSpot from ``hubspot_portal_id`` (the number in
    ``app.hubspot.com/contacts/<portal>/...``). The plain-file CRM has no record pages.
    """

    #: How many accounts, largest revenue first, the tier map shows.
    top_accounts: int = Field(default=25, ge=1, le=200)
    #: Longest at-risk / overdue / upsell list in the report (the rest are counted).
    list_limit: int = Field(default=100, ge=1)
    hubspot_portal_id: str | None = None


class HistorySettings(_Block):
    """The figure history in the state database (``ax-agent history``).

    Every cycle stores one portfolio point and a row per account whose figures
    changed. Portfolio points older than ``daily_after_days`` are thinned to the last
    one of each UTC day, older than ``weekly_after_days`` to the last of each ISO week.
    """

    enabled: bool = True
    daily_after_days: int = Field(default=30, ge=1, le=3650)
    weekly_after_days: int = Field(default=365, ge=2, le=36500)
    #: Write ``health_trend_30d`` and ``health_status_since`` to the CRM's accounts.
    write_back: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> HistorySettings:
        if self.write_back and not self.enabled:
            raise ValueError("write_back needs the history: set enabled: true")
        if self.weekly_after_days <= self.daily_after_days:
            raise ValueError(
                f"weekly_after_days ({self.weekly_after_days}) must be larger than "
                f"daily_after_days ({self.daily_after_days})"
            )
        return self


class PlanSettings(_Block):
    """``plan:``: the revenue-first coverage plan (``ax-agent plan coverage``).

    The options are the command's defaults and what the ``coverage_plan`` job uses.
    With ``write_back: true`` the contact field ``survey_next`` is true for every
    planned and tier-gap contact and false for the others (only changed values are
    written), so marketing operations can build the send list in the CRM.
    """

    target: float = Field(default=0.8, gt=0, le=1)
    per_account: int = Field(default=3, ge=1, le=50)
    fatigue_days: int = Field(default=90, ge=0)
    top: int = Field(default=25, ge=0)
    write_back: bool = False


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
    tasks: TasksSettings = TasksSettings()
    log: LogSettings = LogSettings()
    report: ReportSettings = ReportSettings()
    history: HistorySettings = HistorySettings()
    schedule: ScheduleSettings = ScheduleSettings()
    server: ServerSettings = ServerSettings()
    webhook: WebhookSettings = WebhookSettings()
    file_drop: FileDropSettings = FileDropSettings()
    plan: PlanSettings = PlanSettings()
    metrics: MetricsConfig = MetricsConfig()
    fields: FieldsConfig = FieldsConfig()

    @model_validator(mode="after")
    def _survey_next_follows_plan(self) -> Settings:
        """``plan.write_back`` switches the opt-in ``contact.survey_next`` field on,
        unless the admin configured that field under ``fields.overrides`` already."""
        key = "contact.survey_next"
        if self.plan.write_back and key not in self.fields.overrides:
            overrides = {**self.fields.overrides, key: FieldOverride()}
            self.fields = self.fields.model_copy(update={"overrides": overrides})
        if self.history.write_back:  # the same for the history's two account fields
            added = {
                key: FieldOverride()
                for key in ("account.health_trend_30d", "account.health_status_since")
                if key not in self.fields.overrides
            }
            if added:
                overrides = {**self.fields.overrides, **added}
                self.fields = self.fields.model_copy(update={"overrides": overrides})
        return self

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


def load_settings(config: Path | None = None, **overrides: Any) -> Settings:
    """Validate the whole configuration once; raise ``ConfigError`` naming each bad key."""
    path = config or _env_path("AX_CONFIG") or (DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None)
    if path is not None and not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    secrets = _env_path("AX_SECRETS_FILE")
    if secrets is not None and not secrets.is_file():
        raise ConfigError(f"secrets file {secrets} (AX_SECRETS_FILE) does not exist")
    if path is not None:
        _refuse_secrets_in(path)
    _CONFIG_FILE["path"] = path
    try:
        return Settings(_env_file=secrets, **overrides)  # type: ignore[call-arg]  # pydantic-settings init kwarg
    except ValidationError as exc:
        raise ConfigError(_explain(exc, path)) from None
    finally:
        _CONFIG_FILE["path"] = None


def _refuse_secrets_in(path: Path) -> None:
    """A secret written into the YAML file is refused: it belongs in the environment."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        return  # the settings source reports an unreadable file in its own words
    found = [key for key in secret_keys(Settings) if _holds(data, key)]
    if found:
        fixes = ", ".join(f"{k} (AX_{k.upper().replace('.', '__')})" for k in found)
        raise ConfigError(
            f"{path} holds secrets: {fixes}. Remove them from the file and set them in the "
            "environment or the secrets file (AX_SECRETS_FILE)."
        )


def secret_keys(model: type[BaseModel] = Settings, prefix: str = "") -> list[str]:
    """Dotted paths of every SecretStr setting (``salesforce.password`` …)."""
    keys: list[str] = []
    for name, info in model.model_fields.items():
        annotation = info.annotation
        args = typing.get_args(annotation) or (annotation,)
        if SecretStr in args:
            keys.append(prefix + name)
        for arg in args:
            if isinstance(arg, type) and issubclass(arg, BaseModel):
                keys.extend(secret_keys(arg, f"{prefix}{name}."))
    return keys


def _holds(data: object, dotted: str) -> bool:
    for part in dotted.split("."):
        if not isinstance(data, dict) or part not in data:
            return False
        data = data[part]
    return data is not None


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
