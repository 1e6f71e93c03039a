"""A contact's tier: the CRM's tier field when it holds a known value, else its title.

CRM values are read trimmed and case-insensitive through ``MetricsConfig.tier_values``;
titles go through the ordered ``tier_patterns`` (``re.search``, IGNORECASE, first match
wins). A blank title is ``unknown``; a non-blank title that no pattern matches is
``frontline`` ("any other non-empty title"), so a pattern list without a catch-all
still follows DOMAIN.md.
"""

from __future__ import annotations

import re

from agent.core.contract import MetricsConfig
from agent.core.models import Tier

__all__ = ["TierClassifier", "tier_of"]


class TierClassifier:
    """Compiled tier rules of one config; remembers each title it has classified.

    Titles repeat a lot across a portfolio, so the cache turns ~500,000 regex
    searches into a few thousand.
    """

    def __init__(self, config: MetricsConfig | None = None) -> None:
        config = config or MetricsConfig()
        self._values: dict[str, Tier] = {
            key.strip().lower(): tier for key, tier in config.tier_values.items()
        }
        self._patterns: list[tuple[re.Pattern[str], Tier]] = [
            (re.compile(p.pattern, re.IGNORECASE), p.tier) for p in config.tier_patterns
        ]
        self._by_title: dict[str, Tier] = {}

    def tier_of(self, crm_tier: str | None, title: str | None) -> Tier:
        """The tier of a contact with this CRM tier value and title."""
        if crm_tier:
            mapped = self._values.get(crm_tier.strip(" \t").lower())
            if mapped is not None:
                return mapped
        if not title:
            return "unknown"
        tier = self._by_title.get(title)
        if tier is None:
            tier = self._title_tier(title)
            self._by_title[title] = tier
        return tier

    def _title_tier(self, title: str) -> Tier:
        if not title.strip():
            return "unknown"
        for pattern, tier in self._patterns:
            if pattern.search(title):
                return tier
        return "frontline"


def tier_of(crm_tier: str | None, title: str | None, config: MetricsConfig | None = None) -> Tier:
    """One contact's tier (builds the rules each call: use TierClassifier for many)."""
    return TierClassifier(config).tier_of(crm_tier, title)
