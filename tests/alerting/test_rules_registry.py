"""Reloading: changed files are picked up; an invalid change keeps the last valid set."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from rulefiles import CHANNELS, write_rules
from structlog.testing import capture_logs

from agent.rules import registry as registry_module
from agent.rules.loader import RuleLoadError, RuleSet, load_rules
from agent.rules.registry import Reload, RuleRegistry

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


def test_a_refresh_during_another_threads_load_gets_the_loaded_rules(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The scheduler's alerts job and the answers worker refresh at once on the first
    pass: the one that does not load must not evaluate the empty set before it."""
    registry = RuleRegistry(write_rules(tmp_path, V2), channels=CHANNELS, routes={})
    loading, release = threading.Event(), threading.Event()

    def slow_load(*args: Any, **kwargs: Any) -> RuleSet:
        loading.set()
        assert release.wait(10)
        return load_rules(*args, **kwargs)

    monkeypatch.setattr(registry_module, "load_rules", slow_load)
    got: list[list[str]] = []
    first = threading.Thread(target=lambda: got.append(_ids(registry.refresh())))
    first.start()
    assert loading.wait(10)
    second = threading.Thread(target=lambda: got.append(_ids(registry.refresh())))
    second.start()
    second.join(0.2)
    assert second.is_alive()  # it waits for the load, it does not answer with no rules
    release.set()
    first.join(10)
    second.join(10)
    assert got == [["a", "b"], ["a", "b"]]


def _ids(reload: Reload) -> list[str]:
    return [r.id for r in reload.rules.rules]
