"""Reloading: changed files are picked up; an invalid change keeps the last valid set."""

from __future__ import annotations

from pathlib import Path

from rulefiles import CHANNELS, write_rules
from structlog.testing import capture_logs

from agent.rules.loader import RuleLoadError
from agent.rules.registry import RuleRegistry

V1 = "rules:\n  - id: a\n    scope: account\n    when: account.at_risk\n"
V2 = V1 + "  - id: b\n    scope: account\n    when: account.tier_misaligned\n"
BAD = V1 + "  - id: c\n    scope: account\n    when: account.nope\n"


def test_reload_swaps_valid_sets_and_keeps_the_last_good(tmp_path: Path) -> None:
    reported: list[RuleLoadError] = []
    registry = RuleRegistry(
        write_rules(tmp_path, V1), channels=CHANNELS, routes={}, on_invalid=reported.append
    )
    first = registry.refresh()
    assert first.loaded
    assert [r.id for r in first.rules.rules] == ["a"]
    assert not registry.refresh().loaded  # unchanged files: nothing to do

    write_rules(tmp_path, V2)
    assert [r.id for r in registry.refresh().rules.rules] == ["a", "b"]

    write_rules(tmp_path, BAD)
    with capture_logs() as logs:
        bad = registry.refresh()
    assert bad.error is not None
    assert not bad.loaded
    assert [r.id for r in bad.rules.rules] == ["a", "b"]
    assert [r.id for r in registry.current.rules] == ["a", "b"]
    assert "rules.yaml:7:11: unknown field account.nope" in str(reported[0])
    assert logs[0]["event"] == "rules_invalid_kept_last"
    assert logs[0]["running"] == 2
    assert registry.refresh().error is None  # reported once per change

    write_rules(tmp_path, V1)
    assert [r.id for r in registry.refresh().rules.rules] == ["a"]
