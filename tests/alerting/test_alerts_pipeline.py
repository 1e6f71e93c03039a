"""Whole cycles against a real SQLite state store: record, deliver, remember."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from factories import AS_OF, account_metrics, entity, response_facts
from factories import inputs as make_inputs
from rulefiles import CHANNELS, write_rules
from sqlalchemy import event, select

from agent.alerts.console import ConsoleNotifier
from agent.alerts.model import OutboxAlert, Sent
from agent.alerts.pipeline import AlertPipeline, close_loop
from agent.alerts.repo import AlertRepo, OutboxRecord
from agent.alerts.routing import Routing
from agent.core.routes import Route
from agent.rules.registry import RuleRegistry
from agent.state.schema import alert_outbox
from connectors.common.errors import RetriableError

RULES = """\
rules:
  - id: detractor
    description: Detractor
    scope: response
    when: response.category == "detractor"
    notify: {channel: cx-alerts, owner: true}
    escalate: {after: 48h, to: cx-leadership}
  - id: at-risk
    description: Account at risk
    scope: account
    when: account.at_risk
    notify: {route: by-region}
    realert: 7d
    inhibits: [misaligned]
  - id: misaligned
    scope: account
    when: account.tier_misaligned
    notify: {channel: account-management}
"""
ROUTES = {
    "by-region": Route(attribute="region", map={"EMEA": "cx-leadership"}, default="cx-alerts")
}
HOUR = timedelta(hours=1)
MINUTE = timedelta(minutes=1)


class Recorder(ConsoleNotifier):
    """The console notifier, remembering what it sent; can simulate an outage."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        super().__init__(self.lines.append)
        self.sent: list[tuple[str, OutboxAlert]] = []
        self.updates: list[tuple[Sent, OutboxAlert]] = []
        self.down = False

    def send(self, alert: OutboxAlert, channel_id: str) -> Sent:
        if self.down:
            raise RetriableError("slack", "chat.postMessage: http_503", status=503)
        self.sent.append((channel_id, alert))
        return replace(super().send(alert, channel_id), printed=False)  # stands in for Slack

    def update(self, alert: OutboxAlert, target: Sent) -> Sent:
        self.updates.append((target, alert))
        return replace(super().update(alert, target), printed=False)


def _pipeline(tmp_path: Path, repo: AlertRepo, rules: str = RULES, threshold: int = 10):  # type: ignore[no-untyped-def]
    folder = write_rules(tmp_path / "rules", rules)
    registry = RuleRegistry(folder, channels=CHANNELS, routes=ROUTES)
    routing = Routing(
        channels={n: f"C-{n}" for n in CHANNELS}, default_channel="cx-alerts", routes=ROUTES
    )
    notifier = Recorder()
    pipeline = AlertPipeline(
        repo,
        registry,
        routing,
        notifier,
        admin_channel="C-cx-admin",
        digest_threshold=threshold,
        crm_link=lambda account_id: f"https://crm.example/accounts/{account_id}",
    )
    return pipeline, notifier


def _owned(account_id: str = "A1", **kw):  # type: ignore[no-untyped-def]
    return entity(account_id, owner_email="owner@acme.example", **kw)


def test_a_cycle_records_sends_and_does_not_repeat(tmp_path: Path, repo: AlertRepo) -> None:
    pipeline, notifier = _pipeline(tmp_path, repo)
    owner = _owned(attributes={"region": "EMEA"})
    data = make_inputs(
        [account_metrics(at_risk=True)], [response_facts("R1", account=owner)], entities=[owner]
    )
    report = pipeline.run(data, AS_OF)
    assert report.recorded == 2
    assert report.delivery is not None
    assert report.delivery.sent == 2
    destinations = sorted(channel for channel, _ in notifier.sent)
    assert destinations == ["@owner@acme.example", "C-cx-leadership"]  # owner DM; EMEA route
    detractor = next(a for _, a in notifier.sent if a.rule_id == "detractor")
    assert detractor.content.closable
    assert detractor.content.account is not None
    assert detractor.content.account.crm_url == "https://crm.example/accounts/A1"
    assert "Support never answers." in "\n".join(notifier.lines)

    again = pipeline.run(data, AS_OF + HOUR)
    assert again.recorded == 0
    assert notifier.sent[2:] == []
    assert {r.status for r in repo.recent()} == {"sent"}


def test_route_default_and_inhibition(tmp_path: Path, repo: AlertRepo) -> None:
    pipeline, notifier = _pipeline(tmp_path, repo)
    data = make_inputs(
        [
            account_metrics("A1", at_risk=True, tier_misaligned=True),
            account_metrics("A2", tier_misaligned=True),
        ],
        entities=[entity("A1", attributes={"region": "APAC"}), entity("A2")],
    )
    report = pipeline.run(data, AS_OF)
    sent = sorted((a.rule_id, a.content.account.id, channel) for channel, a in notifier.sent)  # type: ignore[union-attr]
    assert sent == [("at-risk", "A1", "C-cx-alerts"), ("misaligned", "A2", "C-account-management")]
    assert report.decisions["hold"] == 1


def test_realert_after_its_interval(tmp_path: Path, repo: AlertRepo) -> None:
    pipeline, notifier = _pipeline(tmp_path, repo)
    data = make_inputs([account_metrics(at_risk=True)])
    pipeline.run(data, AS_OF)
    pipeline.run(replace(data, as_of=AS_OF + timedelta(days=6)), AS_OF + timedelta(days=6))
    assert len(notifier.sent) == 1
    pipeline.run(replace(data, as_of=AS_OF + timedelta(days=7)), AS_OF + timedelta(days=7))
    assert len(notifier.sent) == 2
    assert "still true after" in notifier.sent[1][1].content.reason


def test_many_alerts_for_one_channel_become_a_digest(tmp_path: Path, repo: AlertRepo) -> None:
    pipeline, notifier = _pipeline(tmp_path, repo, threshold=2)
    data = make_inputs(
        [account_metrics(f"A{i}", tier_misaligned=True) for i in range(3)]
        + [account_metrics("B1", at_risk=True)]
    )
    report = pipeline.run(data, AS_OF)
    assert report.digests == 1
    kinds = sorted((a.kind, channel) for channel, a in notifier.sent)
    assert kinds == [("alert", "C-cx-alerts"), ("digest", "C-account-management")]
    digest = next(a for _, a in notifier.sent if a.kind == "digest")
    assert len(digest.content.items) == 3
    assert digest.content.title == "3 new alerts"
    rows = {r.subject: r for r in repo.recent()}
    assert {rows[f"A{i}"].status for i in range(3)} == {"digested"}
    digest_ts = repo.sent_message(digest.alert_id)
    assert (
        repo.sent_message(next(r.alert_id for r in rows.values() if r.subject == "A0")) == digest_ts
    )


def test_escalation_once_after_48h_and_closing_updates_the_message(
    tmp_path: Path, repo: AlertRepo
) -> None:
    pipeline, notifier = _pipeline(tmp_path, repo)
    facts = response_facts("R1")
    pipeline.run(make_inputs(responses=[facts]), AS_OF)
    pipeline.run(make_inputs(responses=[facts], as_of=AS_OF + 47 * HOUR), AS_OF + 47 * HOUR)
    assert [a.kind for _, a in notifier.sent] == ["alert"]
    pipeline.run(make_inputs(responses=[facts], as_of=AS_OF + 49 * HOUR), AS_OF + 49 * HOUR)
    assert [a.kind for _, a in notifier.sent] == ["alert", "escalation"]
    assert notifier.sent[1][0] == "C-cx-leadership"
    pipeline.run(make_inputs(responses=[facts], as_of=AS_OF + 60 * HOUR), AS_OF + 60 * HOUR)
    assert len(notifier.sent) == 2  # escalates once

    closed = facts._replace(loop_closed_at=AS_OF + 70 * HOUR)
    pipeline.run(make_inputs(responses=[closed], as_of=AS_OF + 71 * HOUR), AS_OF + 71 * HOUR)
    assert len(notifier.updates) == 1
    target, update = notifier.updates[0]
    assert target == repo.sent_message(notifier.sent[0][1].alert_id)
    assert update.content.closure is not None
    assert not update.content.closure.within_sla
    pipeline.run(make_inputs(responses=[closed], as_of=AS_OF + 72 * HOUR), AS_OF + 72 * HOUR)
    assert len(notifier.updates) == 1


def test_closing_from_the_button_prevents_escalation(tmp_path: Path, repo: AlertRepo) -> None:
    pipeline, notifier = _pipeline(tmp_path, repo)
    facts = response_facts("R1")
    pipeline.run(make_inputs(responses=[facts]), AS_OF)
    alert_id = notifier.sent[0][1].alert_id
    record = close_loop(repo, alert_id, "<@U1>", AS_OF + 5 * HOUR, timedelta(hours=48))
    assert record is not None
    assert record.content.closure is not None
    assert record.content.closure.within_sla
    assert close_loop(repo, alert_id, "<@U2>", AS_OF + 6 * HOUR, timedelta(hours=48)) is None
    pipeline.run(make_inputs(responses=[facts], as_of=AS_OF + 50 * HOUR), AS_OF + 50 * HOUR)
    assert [a.kind for _, a in notifier.sent] == ["alert"]
    assert [u.content.closure.closed_by for _, u in notifier.updates] == ["<@U1>"]  # type: ignore[union-attr]


def test_silenced_account_is_held_until_the_silence_is_removed(
    tmp_path: Path, repo: AlertRepo
) -> None:
    pipeline, notifier = _pipeline(tmp_path, repo)
    silence = repo.add_silence(
        rule_id=None,
        account_id="A1",
        reason="renewal",
        created_by="ops",
        now=AS_OF,
        expires_at=AS_OF + timedelta(days=7),
    )
    data = make_inputs([account_metrics(at_risk=True)])
    assert pipeline.run(data, AS_OF).decisions["hold"] == 1
    assert notifier.sent == []
    assert repo.remove_silence(silence)
    pipeline.run(data, AS_OF + HOUR)
    assert [a.content.reason.split("(")[-1] for _, a in notifier.sent] == [
        "silence or inhibition ended, still true)"
    ]


def test_an_outage_keeps_alerts_queued_and_delivers_them_later(
    tmp_path: Path, repo: AlertRepo
) -> None:
    pipeline, notifier = _pipeline(tmp_path, repo)
    notifier.down = True
    data = make_inputs([account_metrics(at_risk=True), account_metrics("A2", at_risk=True)])
    report = pipeline.run(data, AS_OF)
    assert report.delivery is not None
    assert report.delivery.deferred == 2
    assert {r.status for r in repo.recent()} == {"pending"}
    notifier.down = False
    later = pipeline.run(data, AS_OF + HOUR)
    assert later.recorded == 0
    assert later.delivery is not None
    assert later.delivery.sent == 2
    assert sorted(a.content.account.id for _, a in notifier.sent) == ["A1", "A2"]  # type: ignore[union-attr]


def test_an_invalid_change_keeps_rules_and_alerts_the_admin(
    tmp_path: Path, repo: AlertRepo
) -> None:
    pipeline, notifier = _pipeline(tmp_path, repo)
    data = make_inputs([account_metrics(at_risk=True)])
    pipeline.run(data, AS_OF)
    write_rules(tmp_path / "rules", RULES.replace("account.at_risk", "account.at_rsk"))
    report = pipeline.run(replace(data, as_of=AS_OF + HOUR), AS_OF + HOUR)
    assert report.rules == 3
    assert report.rules_error is not None
    admin = [a for channel, a in notifier.sent if channel == "C-cx-admin"]
    assert len(admin) == 1
    assert "rules.yaml:11:11" in admin[0].content.text
    pipeline.run(replace(data, as_of=AS_OF + 2 * HOUR), AS_OF + 2 * HOUR)
    assert len([a for c, a in notifier.sent if c == "C-cx-admin"]) == 1


def test_an_invalid_change_the_answers_path_sees_first_alerts_the_admin_once(
    tmp_path: Path, repo: AlertRepo
) -> None:
    """New answers are decided apart from the cycle (``respond``): when that is the first
    look at an invalid rule change, it reports it; the cycle's run after it does not
    again (the registry reports a change once)."""
    pipeline, notifier = _pipeline(tmp_path, repo)
    data = make_inputs([account_metrics(at_risk=True)])
    pipeline.run(data, AS_OF)
    write_rules(tmp_path / "rules", RULES.replace("account.at_risk", "account.at_rsk"))
    answered = pipeline.respond(replace(data, as_of=AS_OF + HOUR), AS_OF + HOUR)
    assert answered.rules_error is not None
    pipeline.run(replace(data, as_of=AS_OF + 2 * HOUR), AS_OF + 2 * HOUR)
    assert len([a for c, a in notifier.sent if c == "C-cx-admin"]) == 1


@pytest.mark.parametrize("status", ["pending", "sent"])
def test_outbox_rows_carry_the_decided_content(
    tmp_path: Path, repo: AlertRepo, status: str
) -> None:
    pipeline, _ = _pipeline(tmp_path, repo)
    pipeline.run(make_inputs([account_metrics(at_risk=True)]), AS_OF, send=status == "sent")
    with repo.engine.connect() as conn:
        row = conn.execute(select(alert_outbox)).one()
    assert row.status == status
    assert row.payload["content"]["account"]["id"] == "A1"
    assert row.rule_id == "at-risk"
    assert row.scope == "account"


@pytest.mark.parametrize(
    ("change", "where"),
    [
        (("realert: 7d", "realert: 99999999999999d"), "rules.yaml:13:14"),
        (
            (
                "rules:\n",
                "x: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]\n"
                + "".join(
                    f"x{i}: &a{i} [{', '.join(['*a' if i == 0 else f'*a{i - 1}'] * 9)}]\n"
                    for i in range(7)
                )
                + "rules:\n",
            ),
            "rules.yaml:",
        ),
    ],
    ids=["realert-overflow", "billion-laughs"],
)
def test_every_invalid_change_posts_one_admin_alert(
    tmp_path: Path, repo: AlertRepo, change: tuple[str, str], where: str
) -> None:
    pipeline, notifier = _pipeline(tmp_path, repo)
    data = make_inputs([account_metrics(at_risk=True)])
    pipeline.run(data, AS_OF)
    write_rules(tmp_path / "rules", RULES.replace(*change, 1))
    report = pipeline.run(replace(data, as_of=AS_OF + HOUR), AS_OF + HOUR)
    assert report.rules == 3  # the last good rules keep running
    assert report.rules_error is not None
    admin = [a for channel, a in notifier.sent if channel == "C-cx-admin"]
    assert len(admin) == 1
    assert where in admin[0].content.text
    pipeline.run(replace(data, as_of=AS_OF + 2 * HOUR), AS_OF + 2 * HOUR)
    assert len([a for c, a in notifier.sent if c == "C-cx-admin"]) == 1


_STILL = """\
rules:
  - id: at-risk
    description: Account at risk
    scope: account
    when: account.at_risk
    notify: {channel: cx-alerts}
    realert: 7d
  - id: detractor
    description: Detractor
    scope: response
    when: response.category == "detractor"
    notify: {channel: cx-alerts}
    escalate: {after: 48h, to: cx-leadership}
"""


def test_the_decisions_hold_until_a_realert_an_escalation_or_a_silence_ends(
    tmp_path: Path, repo: AlertRepo
) -> None:
    pipeline, _ = _pipeline(tmp_path, repo, _STILL)
    assert pipeline.horizon(AS_OF) is None  # nothing alerted: only new inputs change it
    data = make_inputs([account_metrics(at_risk=True)], [response_facts("R1")])
    pipeline.run(data, AS_OF)
    assert pipeline.horizon(AS_OF) == AS_OF + 48 * HOUR  # the escalation, before the realert
    assert pipeline.horizon(AS_OF + 49 * HOUR) == AS_OF + 49 * HOUR + timedelta(microseconds=1)
    pipeline.escalate(data, AS_OF + 49 * HOUR)
    assert pipeline.horizon(AS_OF + 49 * HOUR) == AS_OF + timedelta(days=7)
    repo.add_silence(
        rule_id=None,
        account_id="A1",
        reason="renewal",
        created_by="ops",
        now=AS_OF,
        expires_at=AS_OF + 60 * HOUR,
    )
    assert pipeline.horizon(AS_OF + 49 * HOUR) == AS_OF + 60 * HOUR


def test_a_rule_reading_the_clock_holds_for_its_own_instant_only(
    tmp_path: Path, repo: AlertRepo
) -> None:
    clock = _STILL.replace("when: account.at_risk", 'when: delta(account.nps, "7d") < 0')
    pipeline, _ = _pipeline(tmp_path, repo, clock)
    assert pipeline.horizon(AS_OF) == AS_OF + timedelta(microseconds=1)


def test_alerts_of_one_rule_and_reason_share_one_reason_text(
    tmp_path: Path, repo: AlertRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A first cycle records tens of thousands of alerts of a few rules: each rule's
    # reason (its condition and why it fired) is one text, not a copy per alert.
    pipeline, _ = _pipeline(tmp_path, repo)
    recorded: list[OutboxRecord] = []
    record = repo.record

    def spy(records: Sequence[OutboxRecord], *args: Any, **kwargs: Any) -> int:
        recorded.extend(records)
        return record(records, *args, **kwargs)

    monkeypatch.setattr(repo, "record", spy)
    accounts = [account_metrics(f"A{n}", at_risk=True) for n in range(3)]
    pipeline.run(make_inputs(accounts), AS_OF, send=False)
    reasons = [r.content.reason for r in recorded if r.content.rule_id == "at-risk"]
    assert len(reasons) == 3
    assert reasons[0] == "at-risk: account.at_risk (condition became true)"
    assert reasons[1] is reasons[0]
    assert reasons[2] is reasons[0]


def test_a_cycle_deciding_while_new_answers_are_decided_alerts_an_account_once(
    tmp_path: Path, repo: AlertRepo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The alerts job (``run``) and the answers worker (``respond``) decide on their own
    threads: when the answers' alert is recorded after the job read the states and
    before it records, the job must not alert the same account condition again."""
    pipeline, _ = _pipeline(tmp_path, repo)
    data = make_inputs([account_metrics(at_risk=True)])
    read, go = threading.Event(), threading.Event()
    states = repo.states

    def read_then_wait(rule_ids: Any) -> Any:
        found = states(rule_ids)
        if threading.current_thread().name == "cycle":
            read.set()
            assert go.wait(10)
        return found

    monkeypatch.setattr(repo, "states", read_then_wait)
    cycle = threading.Thread(target=lambda: pipeline.run(data, AS_OF, send=False), name="cycle")
    cycle.start()
    assert read.wait(10)
    answers = threading.Thread(
        target=lambda: pipeline.respond(data, AS_OF + MINUTE, send=False), name="answers"
    )
    answers.start()
    # The answers are decided and recorded while the cycle still holds the states it
    # read: the worker never waits for a cycle's decisions (seconds at 50,000 accounts).
    answers.join(10)
    assert not answers.is_alive()
    assert [r.rule_id for r in repo.recent()] == ["at-risk"]
    go.set()
    cycle.join(10)
    assert [r.rule_id for r in repo.recent()] == ["at-risk"]


def test_a_cycle_over_figures_older_than_an_answers_alert_does_not_rearm_it(
    tmp_path: Path, repo: AlertRepo
) -> None:
    """The answers worker alerted an account from figures with the new answer; the
    alerts job then records its decisions over the figures it computed before that
    answer came (as of an earlier instant). It must not re-arm the condition, or the
    job's next run, over figures with the answer, alerts the same account again."""
    pipeline, _ = _pipeline(tmp_path, repo)
    pipeline.run(make_inputs([account_metrics(at_risk=False)]), AS_OF, send=False)
    at_risk = make_inputs([account_metrics(at_risk=True)], as_of=AS_OF + 2 * MINUTE)
    pipeline.respond(at_risk, AS_OF + 2 * MINUTE, send=False)
    pipeline.run(
        make_inputs([account_metrics(at_risk=False)], as_of=AS_OF + MINUTE),
        AS_OF + MINUTE,
        send=False,
    )
    pipeline.run(replace(at_risk, as_of=AS_OF + 3 * MINUTE), AS_OF + 3 * MINUTE, send=False)
    assert [r.rule_id for r in repo.recent()] == ["at-risk"]


@pytest.mark.parametrize("engine_name", ["engine", "pg_engine"])
def test_a_loop_closed_from_the_button_while_the_escalation_decides_stays_closed(
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
    engine_name: str,
) -> None:
    """The button is answered on an HTTP thread (of any replica) while the leader's
    escalation job decides over the states it read before: the state it records for
    the escalation must not erase the closure."""
    repo = AlertRepo(request.getfixturevalue(engine_name))
    pipeline, _ = _pipeline(tmp_path, repo)
    facts = response_facts("R1")
    pipeline.run(make_inputs(responses=[facts]), AS_OF, send=False)
    alert_id = repo.recent()[0].alert_id
    states = repo.states

    def closed_after_the_read(rule_ids: Any) -> Any:
        found = states(rule_ids)
        button = threading.Thread(
            target=lambda: close_loop(repo, alert_id, "<@U1>", AS_OF + 49 * HOUR, 48 * HOUR)
        )
        button.start()
        button.join(10)
        return found

    monkeypatch.setattr(repo, "states", closed_after_the_read)
    later = AS_OF + 49 * HOUR
    pipeline.escalate(make_inputs(responses=[facts], as_of=later), later, send=False)
    monkeypatch.setattr(repo, "states", states)
    [state] = repo.states(["detractor"]).values()
    assert (state.closed_at, state.closed_by) == (AS_OF + 49 * HOUR, "<@U1>")


def test_two_closes_of_one_loop_at_once_keep_the_first(
    tmp_path: Path, pg_engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two people press the button of one alert at once (PostgreSQL serves both): the
    second read the loop open before the first committed; the first closure stands."""
    repo = AlertRepo(pg_engine)
    pipeline, _ = _pipeline(tmp_path, repo)
    pipeline.run(make_inputs(responses=[response_facts("R1")]), AS_OF, send=False)
    alert_id = repo.recent()[0].alert_id
    updating, first_done = threading.Event(), threading.Event()

    def wait_before_update(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if threading.current_thread().name == "second" and statement.startswith("UPDATE"):
            updating.set()
            assert first_done.wait(10)

    event.listen(pg_engine, "before_cursor_execute", wait_before_update)
    closed: list[object] = []
    second = threading.Thread(
        target=lambda: closed.append(close_loop(repo, alert_id, "<@U2>", AS_OF + HOUR, HOUR)),
        name="second",
    )
    try:
        second.start()
        assert updating.wait(10)
        assert close_loop(repo, alert_id, "<@U1>", AS_OF + HOUR, HOUR) is not None
        first_done.set()
        second.join(10)
    finally:
        event.remove(pg_engine, "before_cursor_execute", wait_before_update)
    assert closed == [None]
    [state] = repo.states(["detractor"]).values()
    assert state.closed_by == "<@U1>"
