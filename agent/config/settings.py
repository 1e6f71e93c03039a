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
from agent.core.contract import FieldsConfig, MetricsConfig
from agent.rules.model import Route

__all__ = [
    "ConfigError",
    "FilesSettings",
    "HistorySettings",
    "HubSpotSettings",
    "HubSpotSurveySettings",
    "LogSettings",
    "ReportSettings",
    "SalesforceSettings",
    "SalesforceSurveySettings",
    "Settings",
    "SlackSettings",
    "load_settings",
    "secret_keys",
]

DEFAULT_CONFIG = Path("config/ax-agent.yaml")


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FilesSettings(_Block):
    """The plain-file CRM folder (DOMAIN.md's format); write-back goes beside it."""

    path: Path = Path("crm")


class SalesforceSurveySettings(_Block):
    """Where NPS answers live in Salesforce, when they do (``source: none`` by default).

    ``surveys`` reads Salesforce Surveys: the answers to one NPS question
    (``question_id``, a SurveyQuestion id) with the submitter's email and completion
    time of their SurveyResponse. ``custom_object`` reads one record per answer from an
    object of your own with the fields named here.
    """

    source: Literal["none", "surveys", "custom_object"] = "none"
    question_id: str | None = None
    object: str = "NPS_Response__c"
    email_field: str = "Email__c"
    score_field: str = "Score__c"
    submitted_at_field: str = "Submitted_At__c"
    driver_field: str | None = None
    comment_field: str | None = None
    account_field: str | None = None
    loop_closed_field: str | None = None


class SalesforceSettings(_Block):
    """Connection, read mapping, limits and write-back sizes for Salesforce.

    Auth is inferred from what is set, or chosen with ``auth``: ``password``
    (username + password + security_token), ``jwt`` (username + consumer_key +
    private_key_file, OAuth 2.0 JWT bearer) or ``session`` (session_id +
    instance_url). ``domain`` is ``login``, ``test`` (sandbox) or a My Domain such as
    ``acme.my``.
    """

    auth: Literal["password", "jwt", "session"] | None = None
    username: str | None = None
    password: SecretStr | None = None
    security_token: SecretStr | None = None
    consumer_key: str | None = None
    private_key_file: Path | None = None
    session_id: SecretStr | None = None
    instance_url: str | None = None
    domain: str = "login"
    api_version: str = Field(default="62.0", pattern=r"^\d+\.0$")
    timeout_seconds: float = Field(default=120.0, gt=0)
    revenue_field: str = "AnnualRevenue"
    potential_field: str | None = None
    tier_field: str | None = None
    domain_fields: list[str] = Field(default_factory=lambda: ["Website"])
    extra_fields: list[str] = Field(default_factory=list)
    #: Seconds re-read before the stored cursor, for clock skew and late commits.
    cursor_overlap_seconds: int = Field(default=300, ge=0)
    #: Reads whose first page reports more records than this switch to Bulk API 2.0.
    bulk_threshold: int | None = Field(default=1_000_000, gt=0)
    bulk_poll_seconds: float = Field(default=5.0, gt=0)
    #: Share of the org's remaining daily API allowance one run may use.
    budget_run_share: float = Field(default=0.25, gt=0, le=1)
    #: Never make a call once the org has used this share of its daily allowance.
    budget_max_used_share: float = Field(default=0.80, gt=0, le=1)
    #: Records per sObject Collection (Salesforce allows at most 200).
    collection_size: int = Field(default=200, ge=1, le=200)
    #: sObject Collections packed into one Composite request (Salesforce allows 5).
    collections_per_request: int = Field(default=5, ge=1, le=5)
    use_composite: bool = True
    survey: SalesforceSurveySettings = SalesforceSurveySettings()


class HubSpotSurveySettings(_Block):
    """HubSpot's own feedback surveys (the ``feedback_submissions`` object) as a survey source."""

    enabled: bool = False
    #: Only submissions whose ``type_property`` equals this are NPS answers; None reads all.
    survey_type: str | None = "NPS"
    type_property: str = "hs_survey_type"
    score_property: str = "hs_response_value"
    comment_property: str = "hs_content"
    submitted_property: str = "hs_submission_timestamp"
    email_property: str = "hs_contact_email_rollup"
    #: A custom survey question stored on the submission that names the driver.
    driver_property: str | None = None
    modified_property: str = "hs_lastmodifieddate"


class HubSpotSettings(_Block):
    """A HubSpot portal reached with a private app access token."""

    access_token: SecretStr | None = None
    #: ``https://api.hubapi.com``; EU portals, proxies and test servers use their own.
    base_url: str = "https://api.hubapi.com"
    revenue_property: str = "annualrevenue"
    potential_property: str | None = None
    tier_property: str | None = None
    extra_properties: list[str] = Field(default_factory=list)
    #: Company properties whose ``;``-separated values are the account's domains.
    domain_properties: list[str] = Field(
        default_factory=lambda: ["domain", "hs_additional_domains"]
    )
    company_modified_property: str = "hs_lastmodifieddate"
    #: Contacts carry their modification date as ``lastmodifieddate``.
    contact_modified_property: str = "lastmodifieddate"
    #: Requests per ``burst_window_s`` (100 per 10 s; 190 or 250 on higher HubSpot tiers).
    burst_limit: int = Field(default=100, gt=0)
    burst_window_s: float = Field(default=10.0, gt=0)
    #: The CRM search API's own, lower limit (5 requests per second).
    search_limit: int = Field(default=5, gt=0)
    search_window_s: float = Field(default=1.0, gt=0)
    list_page_size: int = Field(default=100, ge=1, le=100)
    search_page_size: int = Field(default=200, ge=1, le=200)
    association_batch_size: int = Field(default=1000, ge=1, le=1000)
    write_batch_size: int = Field(default=100, ge=1, le=100)
    #: Incremental reads start this far before the cursor: search results lag behind writes.
    incremental_overlap_s: float = Field(default=300.0, ge=0)
    timeout_s: float = Field(default=30.0, gt=0)
    retry_attempts: int = Field(default=6, ge=1)
    property_group: str = "ax_agent"
    property_group_label: str = "AX Agent"
    surveys: HubSpotSurveySettings = HubSpotSurveySettings()


def _shipped_channels() -> dict[str, str]:
    """The channel names the shipped rules use, each posting to the Slack channel of that name."""
    names = ("cx-alerts", "cx-leadership", "account-management", "cx-admin")
    return {n: f"#{n}" for n in names}


class SlackSettings(_Block):
    """Slack delivery of alerts, and the channels and routes rule files may name.

    ``channels`` maps the names rules use to Slack channel ids (``C0123ABC``) or
    ``#names``; ids save a lookup. ``routes`` pick a channel name by an account
    attribute. ``default_channel`` and ``admin_channel`` are names from ``channels``.
    """

    bot_token: SecretStr | None = None
    signing_secret: SecretStr | None = None
    base_url: str = "https://slack.com/api/"
    default_channel: str = "cx-alerts"
    admin_channel: str = "cx-admin"
    channels: dict[str, str] = Field(default_factory=_shipped_channels)
    routes: dict[str, Route] = Field(default_factory=dict)
    #: More alerts than this for one channel in one cycle are sent as one digest.
    digest_threshold: int = Field(default=10, ge=0)
    #: @-mention the account owner on every account alert (rules can ask per rule).
    mention_owner: bool = False
    #: Link to a CRM record; ``{id}`` is replaced by the account id.
    crm_url_template: str | None = None
    #: A contact CRM field holding when a detractor's loop was closed (ISO 8601).
    loop_closed_field: str | None = None
    #: Retries of slack_sdk's own handlers (rate limits, 5xx, dropped connections).
    max_retries: int = Field(default=3, ge=0, le=10)
    timeout_seconds: int = Field(default=30, gt=0)

    @model_validator(mode="after")
    def _known_names(self) -> SlackSettings:
        known = set(self.channels)
        problems = [
            f"{key} '{name}' is not in slack.channels"
            for key, name in (
                ("default_channel", self.default_channel),
                ("admin_channel", self.admin_channel),
            )
            if name not in known
        ]
        for route_name, route in self.routes.items():
            for target in (*route.map.values(), *([route.default] if route.default else [])):
                if target not in known:
                    problems.append(
                        f"routes.{route_name}: channel '{target}' is not in slack.channels"
                    )
        if problems:
            raise ValueError("; ".join(problems))
        return self


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

    @model_validator(mode="after")
    def _ordered(self) -> HistorySettings:
        if self.weekly_after_days <= self.daily_after_days:
            raise ValueError(
                f"weekly_after_days ({self.weekly_after_days}) must be larger than "
                f"daily_after_days ({self.daily_after_days})"
            )
        return self


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
    report: ReportSettings = ReportSettings()
    history: HistorySettings = HistorySettings()
    schedule: ScheduleSettings = ScheduleSettings()
    server: ServerSettings = ServerSettings()
    webhook: WebhookSettings = WebhookSettings()
    file_drop: FileDropSettings = FileDropSettings()
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
