"""Rules and the digest read the stored plan's headline: portfolio.coverage_planned_contacts."""

from __future__ import annotations

from pathlib import Path

from agent.config.settings import SlackSettings
from agent.core.compute import Computed, compute_with_matches
from agent.core.plan import PlanOptions
from agent.rules.evaluate import evaluate
from agent.rules.facts import build_inputs
from agent.rules.loader import load_rules
from agent.sync.coverage import plan_from_computed, plan_summary
from tests.core_builders import AS_OF
from tests.plan.test_plan_rule import ACCOUNTS, CONFIG, CONTACTS, RESPONSES

REPO = Path(__file__).resolve().parents[2]


def _inputs(with_plan: bool):  # type: ignore[no-untyped-def]
    document, matches = compute_with_matches(
        ACCOUNTS, CONTACTS, RESPONSES, as_of=AS_OF, config=CONFIG
    )
    computed = Computed(document, ACCOUNTS, matches)
    plan = plan_summary(plan_from_computed(computed, CONTACTS, PlanOptions()))
    return build_inputs(document, ACCOUNTS, [], plan if with_plan else None)


def test_the_weekly_digest_says_whom_to_survey() -> None:
    slack = SlackSettings()
    rules = load_rules(REPO / "rules", channels=set(slack.channels), routes=slack.routes)
    digest = [
        m for m in evaluate(rules.rules, _inputs(True)).matches if m.rule.id == "weekly-digest"
    ]
    assert len(digest) == 1
    # A2 (3 contacts), A4 (1), A6 (1) and the tier gap of A1 (2): 7 contacts; planned
    # 2800 / 3400 = 82 %, expected (1000 + 800 * 0.5 + 400 / 12) / 3400 = 42 %.
    assert "Survey these 7 contacts to reach 82 % revenue coverage (expected 42 %)" in (
        " ".join(digest[0].text.split())
    )


def test_a_rule_can_use_the_planned_contacts(tmp_path: Path) -> None:
    (tmp_path / "plan.yaml").write_text(
        "rules:\n"
        "  - id: survey-wave-due\n"
        "    scope: portfolio\n"
        "    when: portfolio.coverage_planned_contacts > 5\n"
        "    notify: {channel: cx-leadership}\n"
        "    message: survey {portfolio.coverage_planned_contacts} contacts\n",
        encoding="utf-8",
    )
    slack = SlackSettings()
    rules = load_rules(tmp_path, channels=set(slack.channels), routes=slack.routes)
    fired = evaluate(rules.rules, _inputs(True)).matches
    assert [m.text for m in fired] == ["survey 7 contacts"]
    # Before the first plan the figure is null and the comparison is false.
    assert evaluate(rules.rules, _inputs(False)).matches == []
