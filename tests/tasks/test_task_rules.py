# a table of YAML snippets and their errors reads best one case per line
"""The ``task:`` action in rule files: validated like every key, with file:line:column."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from agent.rules.loader import RuleLoadError, load_rules

CHANNELS = {"cx-alerts", "cx-leadership"}
REPO = Path(__file__).resolve().parents[2]


def _load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    (tmp_path / "rules.yaml").write_text(text, encoding="utf-8")
    return load_rules(tmp_path, channels=CHANNELS, routes={})


def _errors(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(RuleLoadError) as info:
        _load(tmp_path, text)
    return [str(e).removeprefix(f"{tmp_path / 'rules.yaml'}:") for e in info.value.errors]


RULE = """\
rules:
  - id: callback
    scope: {scope}
    when: {when}
    {extra}
    task:
{task}
"""


def _rule(
    scope: str = "response",
    when: str = "true",
    extra: str = "",
    task: str = "      subject: Call back",
) -> str:
    return RULE.format(scope=scope, when=when, extra=extra or "severity: info", task=task)


def test_a_task_action_loads_with_its_defaults_and_compiled_templates(tmp_path: Path) -> None:
    rules = _load(
        tmp_path,
        _rule(
            task='      subject: "Call back {contact.name} (score {response.score})"\n'
            "      body: Driver {response.driver}\n"
            "      priority: high\n"
            "      fallback_owner: cx-lead@vendor.example",
        ),
    )
    task = rules.rules[0].task
    assert task is not None
    assert task.action.priority == "high"
    assert task.action.owner == "account_owner"
    assert task.action.due is None  # metrics.loop_sla_hours after the start
    assert task.action.fallback_owner == "cx-lead@vendor.example"
    assert [p.expr is not None for p in task.subject.parts] == [True, True, False]


def test_the_shipped_task_rules(tmp_path: Path) -> None:
    rules = load_rules(
        REPO / "rules", channels={"cx-alerts", "cx-leadership", "account-management"}, routes={}
    ).by_id()
    detractor = rules["new-detractor"]
    assert detractor.task is not None
    assert not detractor.rule.notify.slack
    assert detractor.task.action.priority == "high"
    promoter = rules["promoter-activation"]
    assert promoter.task is not None
    assert promoter.task.action.every == timedelta(days=90)
    assert promoter.task.action.due_from == "created"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            _rule(task="      subject: Call back {contact.nmae}"),
            "7:27: unknown field contact.nmae; did you mean 'name'?",
        ),
        (
            _rule(task="      subject: Call back\n      body: '{response.score | money2}'"),
            "8:32: unknown format 'money2'; known: date, datetime, int",
        ),
        (
            _rule(task="      subject: Call back\n      priorty: high"),
            "8:7: unknown field 'priorty'; did you mean 'priority'?",
        ),
        (
            _rule(task="      subject: Call back\n      priority: urgent"),
            "8:17: task.priority: Input should be 'low', 'normal' or 'high'",
        ),
        (_rule(task="      subject: Call back\n      due: 2 days"), "8:12: task.due:"),
        (
            _rule(task="      subject: Call back\n      owner: Sam"),
            "7:7: task: owner is 'account_owner' or an e-mail address, not 'Sam'",
        ),
        (_rule(task="      body: no subject"), "7:7: task.subject: Field required"),
        (_rule(scope="portfolio"), "6:5: task applies to response and account rules only"),
        (_rule(scope="account"), "7:7: task.every is required on account rules"),
        (
            _rule(
                extra="notify: {slack: false}",
                task="      subject: x\n    escalate: {to: cx-leadership}",
            ),
            "8:5: escalate needs a Slack message",
        ),
    ],
)
def test_task_errors_name_line_column_and_what_is_wrong(
    tmp_path: Path, text: str, expected: str
) -> None:
    errors = _errors(tmp_path, text)
    assert any(e.startswith(expected) for e in errors), errors


def test_a_rule_without_slack_and_without_task_does_nothing_and_is_refused(tmp_path: Path) -> None:
    text = (
        "rules:\n  - id: quiet\n    scope: response\n    when: true\n    notify: {slack: false}\n"
    )
    assert _errors(tmp_path, text) == [
        "5:21: notify.slack: false needs a task: the rule would do nothing"
    ]
