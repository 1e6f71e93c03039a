"""Declarative configuration of the metric contract and the CRM field mapping.

Defaults are DOMAIN.md's. Admins override them in ``config/ax-agent.yaml`` under
``metrics:`` and ``fields:``; every model forbids unknown keys so a typo fails at start.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "DEFAULT_FREE_MAIL",
    "DEFAULT_TIER_PATTERNS",
    "HISTORY_FIELDS",
    "FieldKind",
    "FieldOverride",
    "FieldSpec",
    "FieldsConfig",
    "HealthConfig",
    "MetricsConfig",
    "ObjectKind",
    "TierPattern",
    "default_field_specs",
    "opt_in_field_specs",
]

DEFAULT_FREE_MAIL: tuple[str, ...] = (
    "gmail.com",
    "googlemail.com",
    "outlook.com",
    "hotmail.com",
    "live.com",
    "yahoo.com",
    "icloud.com",
    "aol.com",
    "gmx.de",
    "gmx.net",
    "web.de",
    "proton.me",
    "protonmail.com",
)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


CountedTier = Literal["executive", "management", "frontline"]
_COUNTED_TIERS: tuple[CountedTier, ...] = ("executive", "management", "frontline")


def _identity_tier_values() -> dict[str, CountedTier]:
    return {t: t for t in _COUNTED_TIERS}


class TierPattern(_Frozen):
    """A title regex and the tier it assigns; the first matching pattern wins."""

    tier: CountedTier
    pattern: str

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from exc
        return value


DEFAULT_TIER_PATTERNS: tuple[TierPattern, ...] = (
    TierPattern(
        tier="executive",
        pattern=(
            r"\b(chief|ceo|cfo|coo|cto|cio|cmo|cro|president|vp|svp|evp|vice president"
            r"|founder|owner|partner|managing director|general manager)\b"
        ),
    ),
    TierPattern(
        tier="management", pattern=r"\b(director|head|manager|lead|supervisor|principal)\b"
    ),
    TierPattern(tier="frontline", pattern=r"\S"),
)


class HealthConfig(_Frozen):
    """Weights, penalty and status thresholds of ``health_score`` / ``health_status``."""

    nps_weight: float = 0.6
    coverage_weight: float = 0.25
    recency_weight: float = 0.15
    misalignment_penalty: float = 20.0
    healthy_at: float = 70.0
    neutral_at: float = 40.0


class MetricsConfig(_Frozen):
    """Every threshold of the metric contract, with DOMAIN.md's defaults."""

    window_days: int = Field(default=365, gt=0)
    misalignment_spread: float = Field(default=50.0, ge=0)
    loop_sla_hours: float = Field(default=48.0, gt=0)
    upsell_min_nps: float = 50.0
    upsell_max_revenue_share: float = Field(default=0.5, gt=0)
    recency_full_days: float = 90.0
    recency_zero_days: float = 365.0
    health: HealthConfig = HealthConfig()
    tier_patterns: tuple[TierPattern, ...] = DEFAULT_TIER_PATTERNS
    #: CRM tier-field values (lowercased, trimmed) mapped to tiers, e.g. ``c-level: executive``.
    tier_values: dict[str, CountedTier] = Field(default_factory=_identity_tier_values)
    free_mail_domains: tuple[str, ...] = DEFAULT_FREE_MAIL

    @field_validator("free_mail_domains")
    @classmethod
    def _lowercase(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(d.strip().lower() for d in value)


FieldKind = Literal["number", "percent", "integer", "boolean", "enum", "multi", "datetime"]
ObjectKind = Literal["account", "contact"]


class FieldSpec(_Frozen):
    """One figure written to the CRM: its logical name, type, rounding and CRM names."""

    object: ObjectKind
    logical: str
    kind: FieldKind
    decimals: int = 0
    options: tuple[str, ...] = ()
    salesforce: str
    hubspot: str
    files: str


_HEALTH = ("no_feedback", "healthy", "neutral", "at_risk")
_TIERS = ("executive", "frontline", "management")
_CATEGORIES = ("promoter", "passive", "detractor")


def _spec(  # noqa: PLR0917  # a compact table row reads better than keywords
    obj: ObjectKind,
    logical: str,
    kind: FieldKind,
    sf: str,
    decimals: int = 0,
    options: tuple[str, ...] = (),
) -> FieldSpec:
    return FieldSpec(
        object=obj,
        logical=logical,
        kind=kind,
        decimals=decimals,
        options=options,
        salesforce=sf,
        hubspot=f"ax_{logical}",
        files=logical,
    )


def default_field_specs() -> tuple[FieldSpec, ...]:
    """The CRM fields of DOMAIN.md's table, in its order."""
    return (
        _spec("account", "health_score", "number", "AX_Health_Score__c"),
        _spec("account", "health_status", "enum", "AX_Health_Status__c", options=_HEALTH),
        _spec("account", "nps", "number", "AX_NPS__c", decimals=1),
        _spec("account", "nps_strict", "number", "AX_NPS_Strict__c", decimals=1),
        _spec("account", "contact_coverage", "percent", "AX_Contact_Coverage__c"),
        _spec("account", "tier_coverage", "percent", "AX_Tier_Coverage__c"),
        _spec("account", "tiers_covered", "multi", "AX_Tiers_Covered__c", options=_TIERS),
        _spec("account", "tiers_missing", "multi", "AX_Tiers_Missing__c", options=_TIERS),
        _spec("account", "tier_misaligned", "boolean", "AX_Tier_Misaligned__c"),
        _spec("account", "at_risk", "boolean", "AX_At_Risk__c"),
        _spec("account", "upsell_candidate", "boolean", "AX_Upsell_Candidate__c"),
        _spec("account", "respondents", "integer", "AX_Respondents__c"),
        _spec("account", "open_detractors", "integer", "AX_Open_Detractors__c"),
        _spec("account", "overdue_detractors", "integer", "AX_Overdue_Detractors__c"),
        _spec("account", "last_response_at", "datetime", "AX_Last_Response_At__c"),
        _spec("contact", "tier", "enum", "AX_Tier__c", options=(*_TIERS, "unknown")),
        _spec("contact", "last_score", "integer", "AX_Last_Score__c"),
        _spec("contact", "nps_category", "enum", "AX_NPS_Category__c", options=_CATEGORIES),
        _spec("contact", "last_response_at", "datetime", "AX_Last_Response_At__c"),
    )


def opt_in_field_specs() -> tuple[FieldSpec, ...]:
    """Fields written only when their feature is switched on: ``survey_next`` (the
    coverage plan's send list) needs ``plan.write_back: true``; ``health_trend_30d`` and
    ``health_status_since`` (from the figure history) need ``history.write_back: true``."""
    return (
        _spec("contact", "survey_next", "boolean", "AX_Survey_Next__c"),
        _spec("account", "health_trend_30d", "number", "AX_Health_Trend_30d__c", decimals=1),
        _spec("account", "health_status_since", "datetime", "AX_Health_Status_Since__c"),
    )


#: The account fields written from the figure history rather than the document.
HISTORY_FIELDS = ("health_trend_30d", "health_status_since")


class FieldOverride(_Frozen):
    """An admin's change to one field: other CRM names, or leaving it out."""

    enabled: bool = True
    salesforce: str | None = None
    hubspot: str | None = None
    files: str | None = None


class FieldsConfig(_Frozen):
    """``fields:`` in the config: overrides keyed ``account.nps``, ``contact.tier`` …"""

    overrides: dict[str, FieldOverride] = Field(default_factory=dict)

    @field_validator("overrides")
    @classmethod
    def _known(cls, value: dict[str, FieldOverride]) -> dict[str, FieldOverride]:
        every = (*default_field_specs(), *opt_in_field_specs())
        known = {f"{s.object}.{s.logical}" for s in every}
        unknown = sorted(set(value) - known)
        if unknown:
            raise ValueError(
                f"unknown field {', '.join(unknown)}; known fields: {', '.join(sorted(known))}"
            )
        return value

    def specs(self) -> tuple[FieldSpec, ...]:
        """The enabled field specs with the admin's names applied.

        An opt-in field is enabled by an override (the settings root adds one for
        ``contact.survey_next`` when ``plan.write_back`` is true).
        """
        out: list[FieldSpec] = []
        chosen = [(s, True) for s in default_field_specs()]
        chosen += [(s, False) for s in opt_in_field_specs()]
        for spec, by_default in chosen:
            override = self.overrides.get(f"{spec.object}.{spec.logical}")
            if override is None:
                if by_default:
                    out.append(spec)
                continue
            if not override.enabled:
                continue
            changes = {
                k: v for k, v in override.model_dump(exclude={"enabled"}).items() if v is not None
            }
            out.append(spec.model_copy(update=changes))
        return tuple(out)
