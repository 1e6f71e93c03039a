"""A contact's tier: CRM value first, then the ordered title patterns."""

from __future__ import annotations

import pytest

from agent.core.contract import MetricsConfig, TierPattern
from agent.core.tiers import TierClassifier, tier_of


@pytest.mark.parametrize(
    ("title", "tier"),
    [
        ("Chief Executive Officer", "executive"),
        ("CEO", "executive"),
        ("cfo", "executive"),
        ("VP Sales", "executive"),
        ("SVP, Operations", "executive"),
        ("Vice President Customer Success", "executive"),
        ("Co-Founder", "executive"),
        ("Owner", "executive"),
        ("Managing Director", "executive"),
        ("General Manager EMEA", "executive"),
        ("Partner", "executive"),
        ("President", "executive"),
        ("Director of Engineering", "management"),
        ("Head of Support", "management"),
        ("IT Manager", "management"),
        ("Support Lead", "management"),
        ("Team Supervisor", "management"),
        ("Principal Engineer", "management"),
        ("Engineer", "frontline"),
        ("Analyst", "frontline"),
        ("Vice", "frontline"),
        ("Leader", "frontline"),  # \b: "lead" inside "leader" is not a word
        ("Managers' assistant", "frontline"),
        ("Sales Director & CEO", "executive"),  # first pattern in order wins
        ("", "unknown"),
        ("   ", "unknown"),
        (None, "unknown"),
    ],
)
def test_title_patterns(title: str | None, tier: str) -> None:
    assert tier_of(None, title) == tier


@pytest.mark.parametrize(
    ("crm_tier", "tier"),
    [
        ("executive", "executive"),
        (" Management ", "management"),
        ("FRONTLINE", "frontline"),
        ("\texecutive", "executive"),
    ],
)
def test_crm_tier_wins_over_the_title(crm_tier: str, tier: str) -> None:
    assert tier_of(crm_tier, "Engineer") == tier
    assert tier_of(crm_tier, "") == tier


@pytest.mark.parametrize("crm_tier", ["c-level", "unknown", "exec", "", "  "])
def test_unknown_crm_tier_falls_back_to_the_title(crm_tier: str) -> None:
    assert tier_of(crm_tier, "Head of IT") == "management"
    assert tier_of(crm_tier, None) == "unknown"


def test_tier_values_and_patterns_come_from_config() -> None:
    config = MetricsConfig(
        tier_values={"C-Level": "executive"},
        tier_patterns=(TierPattern(tier="management", pattern=r"\bboss\b"),),
    )
    classifier = TierClassifier(config)
    assert classifier.tier_of(" c-level ", "") == "executive"
    assert classifier.tier_of("executive", "Engineer") == "frontline"  # not mapped any more
    assert classifier.tier_of(None, "The BOSS") == "management"
    # no catch-all pattern: any other non-empty title is still frontline (DOMAIN.md rule 3)
    assert classifier.tier_of(None, "CEO") == "frontline"


def test_classifier_gives_the_same_tier_from_its_cache() -> None:
    classifier = TierClassifier()
    assert [classifier.tier_of(None, "CEO") for _ in range(3)] == ["executive"] * 3
