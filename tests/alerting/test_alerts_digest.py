"""The weekly digest rule (``attach: driver_chart``) through whole alerting cycles.

A real SQLite state store and the console notifier; the rule file is the shipped
example's shape. The figures come from a golden example, so the values checked are
the metric contract's.
"""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from rich.console import Console
from rulefiles import CHANNELS, write_rules

from agent.alerts.console import ConsoleNotifier
from agent.alerts.model import OutboxAlert
from agent.alerts.pipeline import AlertPipeline
from agent.alerts.repo import AlertRepo
from agent.alerts.routing import Routing
from agent.cli.demo import run_demo
from agent.report.figures import headline_figures
from agent.rules.facts import RuleInputs, build_inputs
from agent.rules.registry import RuleRegistry
from tests.report_support import load_fixture

WEEKLY = """\
rules:
  - id: weekly-digest
    description: Account Experience weekly digest
    scope: portfolio
    when: true
    severity: info
    attach: driver_chart
    notify: {channel: cx-leadership}
    message: "NPS {portfolio.nps} on {portfolio.revenue_coverage | pct} of revenue"
    realert: 7d
"""
NOISY = """\
  - id: any-account
    scope: account
    when: true
    notify: {channel: cx-leadership}
"""
START = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)


class Recorder(ConsoleNotifier):
    def __init__(self) -> None:
        self.lines: list[str] = []
        super().__init__(self.lines.append)
        self.sent: list[OutboxAlert] = []

    def send(self, alert: OutboxAlert, channel_id: str):  # type: ignore[no-untyped-def]
        self.sent.append(alert)
        return replace(super().send(alert, channel_id), printed=False)  # stands in for Slack


def _pipeline(
    tmp_path: Path, repo: AlertRepo, rules: str = WEEKLY, threshold: int = 10
) -> tuple[AlertPipeline, Recorder]:
    registry = RuleRegistry(write_rules(tmp_path / "rules", rules), channels=CHANNELS, routes={})
    routing = Routing(channels={n: f"C-{n}" for n in CHANNELS}, default_channel="cx-alerts")
    notifier = Recorder()
    pipeline = AlertPipeline(
        repo, registry, routing, notifier, admin_channel="C-cx-admin", digest_threshold=threshold
    )
    return pipeline, notifier


def _inputs() -> RuleInputs:
    fixture = load_fixture("three-accounts")
    return build_inputs(fixture.doc, fixture.accounts)


def _digests(notifier: Recorder) -> list[OutboxAlert]:
    return [a for a in notifier.sent if a.rule_id == "weekly-digest"]


def test_fires_once_a_week_and_not_more_often(tmp_path: Path, repo: AlertRepo) -> None:
    pipeline, notifier = _pipeline(tmp_path, repo)
    data = _inputs()
    week = timedelta(days=7)
    cycles = [
        START,  # the first cycle after the rule is added
        START + timedelta(minutes=15),
        START + timedelta(days=1),
        START + week - timedelta(minutes=1),
        START + week,  # due
        START + week + timedelta(hours=1),
        START + 2 * week - timedelta(seconds=1),
        START + 2 * week + timedelta(minutes=10),  # due: the cycle after the mark
    ]
    fired = []
    for now in cycles:
        report = pipeline.run(data, now)
        fired.append(report.recorded)
    assert fired == [1, 0, 0, 0, 1, 0, 0, 1]
    digests = _digests(notifier)
    assert [d.created_at for d in digests] == [cycles[0], cycles[4], cycles[7]]
    assert [d.content.reason.rsplit("(", 1)[1] for d in digests] == [
        "condition became true)",
        "still true after 1w)",
        "still true after 1w)",
    ]
    assert {r.status for r in repo.recent()} == {"sent"}


def test_the_alert_carries_the_documents_headline_figures_and_driver_figures(
    tmp_path: Path, repo: AlertRepo
) -> None:
    pipeline, _ = _pipeline(tmp_path, repo)
    data = _inputs()
    pipeline.run(data, START, send=False)

    (stored,) = repo.pending()  # as a restarted agent would read it back
    attachment = stored.content.attachment
    assert attachment is not None
    assert attachment.kind == "driver_chart"
    assert attachment.as_of == data.document.as_of
    expected = headline_figures(data.document)
    assert [(h.key, h.value, h.text, h.note) for h in attachment.headlines] == [
        (h.key, h.value, h.text, h.note) for h in expected
    ]
    assert list(attachment.drivers) == data.document.drivers  # unrounded, as computed
    assert stored.content.text == "NPS 35.7 on 70 % of revenue"
    assert stored.destination.channel == "C-cx-leadership"


def test_the_console_prints_the_figures_and_says_a_chart_would_be_attached(
    tmp_path: Path, repo: AlertRepo
) -> None:
    pipeline, notifier = _pipeline(tmp_path, repo)
    report = pipeline.run(_inputs(), START)

    assert report.delivery is not None
    assert (report.delivery.sent, report.delivery.attached) == (1, 1)
    (text,) = notifier.lines
    assert text.startswith("[INFO] Account Experience weekly digest  -> C-cx-leadership")
    assert "    NPS: 35.7 (14 respondents)" in text
    assert "    Revenue coverage: 70.0 % (700,000 of 1,000,000)" in text
    assert "    At-risk revenue: 600,000 (1 account at risk)" in text
    drivers = len(_inputs().document.drivers)
    assert (
        f"  chart: the driver chart (by answers and by revenue, {drivers} drivers) "
        "would be attached in Slack, in the message's thread"
    ) in text


def test_is_never_folded_into_a_digest_of_many_alerts(tmp_path: Path, repo: AlertRepo) -> None:
    pipeline, notifier = _pipeline(tmp_path, repo, WEEKLY + NOISY, threshold=2)
    report = pipeline.run(_inputs(), START)

    assert report.digests == 1  # three account alerts to one channel: one digest message
    kinds = sorted((a.kind, a.rule_id) for a in notifier.sent)
    assert kinds == [("alert", "weekly-digest"), ("digest", "digest")]
    (digest,) = _digests(notifier)
    assert digest.content.attachment is not None


def test_the_demo_shows_the_digest_once_however_many_alerts_come_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no config file: the shipped rules
    for name in [n for n in os.environ if n.startswith("AX_")]:
        monkeypatch.delenv(name)
    first, again = (Console(record=True, width=200) for _ in range(2))

    run_demo(tmp_path / "demo", fresh=True, console=first)
    run_demo(tmp_path / "demo", fresh=False, console=again)

    shown = first.export_text()
    assert "more alerts." in shown  # the digest came after the handful shown in full
    assert "[INFO] Account Experience weekly digest  -> #cx-leadership" in shown
    assert "    Revenue coverage: " in shown
    assert "would be attached in Slack, in the message's thread" in shown
    assert "weekly digest" not in again.export_text()  # not again before a week is over
