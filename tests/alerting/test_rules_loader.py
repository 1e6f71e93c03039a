# ruff: noqa: E501  # a table of YAML snippets and their errors reads best one case per line
"""Loading rule files: every error names file, line and column; a bad set is refused whole."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from agent.core.routes import Route
from agent.rules.loader import RuleLoadError, load_rules

CHANNELS = {"cx-alerts", "cx-leadership", "cx-admin"}
ROUTES = {"by-region": Route(attribute="region", map={"EMEA": "cx-alerts"})}


def _errors(tmp_path: Path, text: str, name: str = "rules.yaml") -> list[str]:
    file = tmp_path / name
    file.write_text(text, encoding="utf-8")
    with pytest.raises(RuleLoadError) as info:
        load_rules(tmp_path, channels=CHANNELS, routes=ROUTES)
    return [str(e).removeprefix(f"{file}:") for e in info.value.errors]


GOOD = """\
rules:
  - id: exec-detractor
    description: Executive detractor
    scope: response
    when: response.category == "detractor" and contact.tier == "executive"
    severity: critical
    notify: {channel: cx-alerts, owner: true, mention_owner: true}
    message: "{contact.name} at {account.name} scored {response.score}"
    escalate: {after: 2d, to: cx-leadership, unless: response.loop_closed_at != null}
  - id: at-risk
    scope: account
    when: account.at_risk
    realert: 7d
    notify: {route: by-region}
    inhibits: [misaligned]
  - id: misaligned
    scope: account
    when: account.tier_misaligned
    enabled: false
"""


def test_a_valid_file_loads_and_compiles(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(GOOD, encoding="utf-8")
    rules = load_rules(tmp_path, channels=CHANNELS, routes=ROUTES)
    by_id = rules.by_id()
    assert [r.id for r in rules.rules] == ["exec-detractor", "at-risk", "misaligned"]
    assert [r.id for r in rules.enabled()] == ["exec-detractor", "at-risk"]
    exec_rule = by_id["exec-detractor"].rule
    assert exec_rule.escalate is not None
    assert exec_rule.escalate.after == timedelta(days=2)
    assert by_id["at-risk"].rule.realert == timedelta(days=7)
    assert by_id["exec-detractor"].unless is not None
    assert by_id["at-risk"].line == 10


def test_a_portfolio_rule_may_attach_the_driver_chart(tmp_path: Path) -> None:
    (tmp_path / "rules.yaml").write_text(
        "rules:\n  - id: weekly\n    scope: portfolio\n    when: true\n"
        "    attach: driver_chart\n    realert: 7d\n"
        "  - id: plain\n    scope: portfolio\n    when: true\n",
        encoding="utf-8",
    )
    by_id = load_rules(tmp_path, channels=CHANNELS, routes=ROUTES).by_id()
    assert by_id["weekly"].rule.attach == "driver_chart"
    assert by_id["plain"].rule.attach is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "rules:\n  - id: a\n    scope: account\n    when: account.at_risk\n    realert: 7x\n",
            "5:14: realert: '7x' is not a duration",
        ),
        (
            "rules:\n  - id: a\n    scope: account\n    when: account.at_risk\n    realret: 7d\n",
            "5:5: unknown field 'realret'; did you mean 'realert'?",
        ),
        (
            "rules:\n  - id: a\n    scope: account\n    when: account.at_risk\n    notify: {chanel: x}\n",
            "5:14: unknown field 'chanel'; did you mean 'channel'?",
        ),
        (
            "rules:\n  - id: a\n    scope: acount\n    when: account.at_risk\n",
            "3:12: scope: Input should be 'response', 'account' or 'portfolio'",
        ),
        (
            "rules:\n  - id: a\n    scope: account\n    when: account.at_risk\n    enabled: maybe\n",
            "5:14: enabled: Input should be a valid boolean",
        ),
        ("rules:\n  - id: a\n    scope: account\n", "2:5: when: Field required"),
        (
            "rules:\n  - id: a\n    scope: account\n    when: account.at_risk\n    notify: {channel: cx-alert}\n",
            "5:23: unknown channel 'cx-alert'; did you mean 'cx-alerts'?",
        ),
        (
            "rules:\n  - id: a\n    scope: account\n    when: account.at_risk\n    notify: {route: by-regoin}\n",
            "5:21: unknown route 'by-regoin'; did you mean 'by-region'?",
        ),
        (
            "rules:\n  - id: a\n    scope: account\n    when: account.at_risk\n    notify: {route: by-region, channel: cx-alerts}\n",
            "5:13: notify: give either channel or route, not both",
        ),
        (
            "rules:\n  - id: a\n    scope: account\n    when: account.at_risk\n    escalate: {to: nowhere}\n",
            "5:20: unknown channel 'nowhere'",
        ),
        (
            "rules:\n  - id: a\n    scope: account\n    when: account.at_risk\n    escalate: {after: soon, to: cx-admin}\n",
            "5:23: escalate.after: 'soon' is not a duration",
        ),
        (
            "rules:\n  - id: a\n    scope: account\n    when: account.at_risk\n    realert: 0s\n",
            "5:14: realert: '0s' must be longer than zero",
        ),
        (
            "rules:\n  - id: a\n    scope: response\n    when: response.score < 7\n    realert: 1d\n",
            "5:5: realert applies to account and portfolio rules only",
        ),
        (
            "rules:\n  - id: a\n    scope: account\n    when: account.at_risk\n    max_age: 1d\n",
            "5:5: max_age applies to response rules only",
        ),
        (
            "rules:\n  - id: a\n    scope: portfolio\n    when: portfolio.nps < 0\n    escalate: {to: cx-admin}\n",
            "5:5: escalate applies to response and account rules only",
        ),
        (
            "rules:\n  - id: a\n    scope: portfolio\n    when: portfolio.nps < 0\n    notify: {owner: true}\n",
            "5:13: a portfolio rule has no account owner",
        ),
        (
            "rules:\n  - id: a\n    scope: account\n    when: account.at_risk\n    attach: driver_chart\n",
            "5:5: attach applies to portfolio rules only",
        ),
        (
            "rules:\n  - id: a\n    scope: response\n    when: response.score < 7\n    attach: driver_chart\n",
            "5:5: attach applies to portfolio rules only",
        ),
        (
            "rules:\n  - id: a\n    scope: portfolio\n    when: true\n    attach: nps_chart\n",
            "5:13: attach: Input should be 'driver_chart'",
        ),
        (
            "rules:\n  - id: a\n    scope: portfolio\n    when: true\n    atach: driver_chart\n",
            "5:5: unknown field 'atach'; did you mean 'attach'?",
        ),
        (
            "rules:\n  - id: a\n    scope: account\n    when: account.at_rsk\n",
            "4:11: unknown field account.at_rsk; did you mean 'at_risk'?",
        ),
        (
            "rules:\n  - id: a\n    scope: account\n    when: 'account.at_risk and (account.nps >'\n",
            "4:12: syntax error",
        ),
        (
            "rules:\n  - id: a\n    scope: account\n    when: |\n      account.at_risk\n        and account.nsp < 3\n",
            "6:13: unknown field account.nsp; did you mean 'nps'?",
        ),
        (
            "rules:\n  - id: a\n    scope: account\n    when: account.at_risk\n    message: 'Hi {account.nme}'\n",
            "5:19: unknown field account.nme; did you mean 'name'?",
        ),
        (
            "rules:\n  - id: a\n    scope: account\n    when: account.at_risk\n    message: 'Hi {account.name | money}'\n",
            "5:34: format 'money' needs num",
        ),
        (
            "rules:\n  - id: a\n    scope: account\n    when: account.at_risk\n    message: 'Hi {account.name'\n",
            "5:18: '{' is never closed",
        ),
        (
            "rules:\n  - id: a\n    scope: account\n    when: account.at_risk\n    inhibits: [nope]\n",
            "5:16: unknown rule 'nope'",
        ),
        (
            "rules:\n  - id: Bad Id\n    scope: account\n    when: account.at_risk\n",
            "2:9: id: String should match pattern",
        ),
        (
            "rules:\n  - id: a\n    scope: account\n    when: account.at_risk\n  - id: a\n    scope: account\n    when: account.at_risk\n",
            "5:9: rule id 'a' is already used at",
        ),
        ("rules:\n  - id: a\n    id: b\n", "3:5: key 'id' appears twice"),
        ("rules:\n  - id: a\n    scope: [account\n", "4:1: YAML syntax"),
        ("rulez: []\n", "1:1: a rule file is a mapping with a 'rules:' list"),
        ("rules: {a: 1}\n", "1:8: 'rules' must be a list of rules"),
        ("rules: []\nextra: 1\n", "2:1: unknown top-level key 'extra'"),
    ],
)
def test_each_error_names_file_line_and_column(tmp_path: Path, text: str, expected: str) -> None:
    errors = _errors(tmp_path, text)
    assert any(e.startswith(expected) for e in errors), errors


def test_all_errors_of_all_files_are_reported(tmp_path: Path) -> None:
    (tmp_path / "b.yaml").write_text(
        "rules:\n  - id: b\n    scope: account\n    when: account.nsp > 1\n    realert: nope\n"
    )
    errors = _errors(
        tmp_path, "rules:\n  - id: a\n    scope: account\n    when: account.x\n", "a.yaml"
    )
    assert len(errors) == 3
    assert errors[0].startswith("4:11: unknown field account.x")
    assert any("b.yaml:5:14: realert" in e for e in errors)
    assert any("b.yaml:4:11: unknown field account.nsp" in e for e in errors)


def test_a_missing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RuleLoadError, match="no such file"):
        load_rules(tmp_path / "nope", channels=CHANNELS, routes={})
