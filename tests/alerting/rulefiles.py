"""Rule sets written to a temporary folder for tests."""

from __future__ import annotations

from pathlib import Path

from agent.rules.loader import RuleSet, load_rules

CHANNELS = {"cx-alerts", "cx-leadership", "cx-admin", "account-management"}


def write_rules(folder: Path, text: str, name: str = "rules.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text, encoding="utf-8")
    return folder


def rules_from(folder: Path, text: str) -> RuleSet:
    return load_rules(write_rules(folder, text), channels=CHANNELS, routes={})
