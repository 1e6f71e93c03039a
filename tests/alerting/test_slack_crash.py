"""Kill the agent between "Slack accepted the message" and "marked sent": no duplicate, no loss."""

from __future__ import annotations

import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fake_slack import CHANNELS, TOKEN, FakeSlack
from slackkit import digest_record, notifier, record
from sqlalchemy import Engine

from agent.alerts.deliver import deliver
from agent.alerts.repo import AlertRepo

CX = CHANNELS["cx-alerts"]
LEAD = CHANNELS["cx-leadership"]
CHILD = Path(__file__).with_name("crash_child.py")


@pytest.mark.slow
def test_a_killed_delivery_resumes_without_duplicates(
    slack: FakeSlack, repo: AlertRepo, engine: Engine
) -> None:
    now = datetime.now(UTC)
    repo.record([record(f"a{i}", CX, now) for i in range(4)], [])
    result = subprocess.run(
        [sys.executable, str(CHILD), str(engine.url), slack.base_url, TOKEN],
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == -signal.SIGKILL, result.stderr.decode()
    assert len(slack.posted()) == 2
    statuses = {r.alert_id: (r.status, r.attempts) for r in repo.recent()}
    # The four were claimed together, in one commit before the first send; two are in
    # Slack, none marked yet (the marks ride on the next commit): the dangerous case.
    assert statuses == {f"a{i}": ("pending", 1) for i in range(4)}

    report = deliver(repo, notifier(slack.base_url), datetime.now(UTC))
    assert (report.recovered, report.sent) == (2, 2)  # a0 and a1 found, a2 and a3 sent
    ids = [m["metadata"]["event_payload"]["alert_id"] for m in slack.messages[CX]]
    assert sorted(ids) == ["a0", "a1", "a2", "a3"]  # each exactly once
    assert {r.status for r in repo.recent()} == {"sent"}
    assert {repo.sent_message(f"a{i}").ts for i in range(4)} == {
        m["ts"] for m in slack.messages[CX]
    }  # type: ignore[union-attr]


@pytest.mark.slow
def test_a_delivery_killed_after_the_chart_upload_resumes_without_a_second_chart(
    slack: FakeSlack, repo: AlertRepo, engine: Engine
) -> None:
    now = datetime.now(UTC)
    repo.record([digest_record("weekly-digest:portfolio:1", LEAD, now)], [])
    result = subprocess.run(
        [sys.executable, str(CHILD), str(engine.url), slack.base_url, TOKEN, "attach"],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == -signal.SIGKILL, result.stderr.decode()
    (message,) = slack.messages[LEAD]
    assert len(slack.thread(LEAD, message["ts"])) == 1  # the chart is in Slack ...
    (row,) = repo.recent()
    assert row.status == "pending"  # ... and not recorded: the dangerous case

    report = deliver(repo, notifier(slack.base_url), datetime.now(UTC))

    assert (report.sent, report.recovered, report.attached) == (0, 1, 0)
    assert slack.messages[LEAD] == [message]  # one message
    assert len(slack.thread(LEAD, message["ts"])) == 1  # one chart
    assert repo.sent_message("weekly-digest:portfolio:1").ts == message["ts"]  # type: ignore[union-attr]
