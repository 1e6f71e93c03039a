"""Honest delivery status: without a Slack token alerts are ``printed``, never ``sent``.

A token configured later sends nothing old on its own; ``alerts resend --since`` does,
and ``alerts list`` shows which alert was which.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from factories import AS_OF, account_metrics
from factories import inputs as make_inputs
from rulefiles import CHANNELS, write_rules
from typer.testing import CliRunner

from agent.alerts.console import ConsoleNotifier
from agent.alerts.deliver import deliver
from agent.alerts.model import OutboxAlert, Sent
from agent.alerts.pipeline import AlertPipeline
from agent.alerts.repo import AlertRepo
from agent.alerts.routing import Routing
from agent.cli import app
from agent.rules.registry import RuleRegistry
from agent.state.store import StateStore

RULES = "rules:\n  - id: at-risk\n    scope: account\n    when: account.at_risk\n"
runner = CliRunner()


class SlackStandIn(ConsoleNotifier):
    """What a configured Slack token delivers: really sent, remembered."""

    def __init__(self) -> None:
        super().__init__(lambda _text: None)
        self.sent: list[str] = []

    def send(self, alert: OutboxAlert, channel_id: str) -> Sent:
        self.sent.append(alert.alert_id)
        return replace(super().send(alert, channel_id), printed=False)


def _pipeline(tmp_path: Path, repo: AlertRepo, notifier: ConsoleNotifier) -> AlertPipeline:
    registry = RuleRegistry(write_rules(tmp_path / "rules", RULES), channels=CHANNELS, routes={})
    routing = Routing(channels={n: f"C-{n}" for n in CHANNELS}, default_channel="cx-alerts")
    return AlertPipeline(repo, registry, routing, notifier, admin_channel="C-cx-admin")


def test_printed_alerts_stay_printed_until_resent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AX_STATE_URL", url)
    store = StateStore.open(url)
    try:
        repo = AlertRepo(store.engine)
        printed: list[str] = []
        data = make_inputs([account_metrics("A1", at_risk=True)])
        _pipeline(tmp_path, repo, ConsoleNotifier(printed.append)).run(data, AS_OF)
        assert len(printed) == 1
        assert [r.status for r in repo.recent()] == ["printed"]

        listed = runner.invoke(app, ["alerts", "list"])
        assert listed.exit_code == 0, listed.output
        assert "printed   alert" in listed.output
        assert "alerts resend --since" in listed.output

        slack = SlackStandIn()  # a token is configured: nothing old goes out by itself
        later = AS_OF + timedelta(hours=1)
        _pipeline(tmp_path, repo, slack).run(replace(data, as_of=later), later)
        deliver(repo, slack, later)
        assert slack.sent == []

        resent = runner.invoke(app, ["alerts", "resend", "--since", "2026-01-01T00:00:00Z"])
        assert resent.exit_code == 0, resent.output
        assert "queued 1 printed alert(s)" in resent.output
        deliver(repo, slack, later)
        assert len(slack.sent) == 1
        assert [r.status for r in repo.recent()] == ["sent"]
        again = runner.invoke(app, ["alerts", "resend", "--since", "2026-01-01T00:00:00Z"])
        assert "queued 0 printed alert(s)" in again.output
    finally:
        store.close()


def test_resend_refuses_a_bad_instant() -> None:
    result = runner.invoke(app, ["alerts", "resend", "--since", "last week"])
    assert result.exit_code == 2
    assert "--since 'last week' is not an ISO 8601 instant" in result.output
