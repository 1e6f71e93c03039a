"""The weekly digest alert in Slack: the figures in a message, the chart in its thread.

Against the loopback Slack fake, file upload v2 included. A crash is a ``BaseException``
raised right after Slack answered and before the outbox recorded it: every step of
the repository commits on its own, so what is stored then is what a killed process
leaves (the subprocess test in ``test_slack_crash.py`` kills one for real).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fake_slack import CHANNELS, TOKEN, FakeSlack
from slackkit import digest_record, notifier, record

from agent.alerts.deliver import deliver
from agent.alerts.model import OutboxAlert, Sent
from agent.alerts.repo import AlertRepo
from agent.report.digest import driver_chart, drivers_png
from connectors.slack.blocks import LIMITS, build_message
from connectors.slack.notifier import METADATA_EVENT, SlackNotifier
from connectors.slack.report import DIGEST_FILENAME
from tests.report_support import load_fixture

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
LEAD = CHANNELS["cx-leadership"]
DIGEST = "weekly-digest:portfolio:1780315200"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class Crash(BaseException):
    """The process dying: nothing in the delivery stage catches it."""


class DiesAfterSend(SlackNotifier):
    def send(self, alert: OutboxAlert, channel_id: str) -> Sent:
        super().send(alert, channel_id)
        raise Crash


class DiesAfterAttach(SlackNotifier):
    def attach(self, alert: OutboxAlert, message: Sent) -> None:
        super().attach(alert, message)
        raise Crash


def _dying(kind: type[SlackNotifier], slack: FakeSlack) -> SlackNotifier:
    return kind(notifier(slack.base_url).client, draw_chart=driver_chart)


def _methods(slack: FakeSlack) -> list[str]:
    return [m for m, _ in slack.calls]


def _charts(slack: FakeSlack, message_ts: str) -> list[dict[str, Any]]:
    """The chart files shared in the thread of ``message_ts``."""
    return [
        f
        for reply in slack.thread(LEAD, message_ts)
        for f in reply.get("files", [])
        if f["name"] == DIGEST_FILENAME
    ]


def _only_message(slack: FakeSlack) -> dict[str, Any]:
    (message,) = slack.messages[LEAD]
    return message


def test_posts_the_figures_with_metadata_then_uploads_the_chart_into_the_thread(
    slack: FakeSlack, repo: AlertRepo
) -> None:
    repo.record([digest_record(DIGEST, LEAD, NOW)], [])

    report = deliver(repo, notifier(slack.base_url), NOW)

    assert (report.sent, report.attached, report.failed) == (1, 1, 0)
    assert _methods(slack) == [
        "chat.postMessage",
        "files.getUploadURLExternal",
        "upload",
        "files.completeUploadExternal",
    ]
    message = _only_message(slack)
    assert message["metadata"] == {
        "event_type": METADATA_EVENT,
        "event_payload": {"alert_id": DIGEST, "rule_id": "weekly-digest"},
    }
    fields = [f["text"] for b in message["blocks"] for f in b.get("fields", [])]
    assert "*NPS*\n35.7 (14 respondents)" in fields
    assert "*Revenue coverage*\n70.0 % (700,000 of 1,000,000)" in fields
    assert len(fields) == 8  # the eight headline figures
    complete = next(a for m, a in slack.calls if m == "files.completeUploadExternal")
    assert complete["channel_id"] == LEAD
    assert complete["thread_ts"] == message["ts"]
    assert "initial_comment" not in complete  # the figures are in the parent message
    (chart,) = _charts(slack, message["ts"])
    uploaded = slack.files[chart["id"]]["data"]
    assert uploaded.startswith(PNG_MAGIC)
    # Drawn at delivery from the driver figures stored with the alert: the document's.
    assert uploaded == drivers_png(load_fixture("three-accounts").doc.drivers)
    assert "revenue" in slack.files[chart["id"]]["alt_txt"]
    sent = repo.sent_message(DIGEST)
    assert sent == Sent(channel=LEAD, ts=message["ts"])


def test_the_message_fits_slacks_limits_and_says_where_the_chart_is() -> None:
    content = digest_record(DIGEST, LEAD, NOW).content
    blocks = [b.to_dict() for b in build_message(content)]
    assert len(blocks) <= LIMITS["blocks"]
    context = [e["text"] for b in blocks if b["type"] == "context" for e in b["elements"]]
    assert any(
        "Figures as of 2025-06-01 12:00 UTC. The driver chart, by answers and by revenue, "
        "follows in this thread." in c
        for c in context
    ), context


def test_crash_after_the_message_finds_it_and_uploads_the_chart_once(
    slack: FakeSlack, repo: AlertRepo
) -> None:
    repo.record([digest_record(DIGEST, LEAD, NOW)], [])
    with pytest.raises(Crash):
        deliver(repo, _dying(DiesAfterSend, slack), NOW)
    (row,) = repo.recent()
    assert (row.status, row.attempts) == ("pending", 1)  # in Slack, not recorded
    assert slack.count("files.getUploadURLExternal") == 0

    report = deliver(repo, notifier(slack.base_url), NOW)

    assert (report.sent, report.recovered, report.attached) == (0, 1, 1)
    message = _only_message(slack)  # found by its metadata, not posted again
    assert slack.count("conversations.history") == 1
    assert slack.count("conversations.replies") == 0  # no chart can be there yet
    assert len(_charts(slack, message["ts"])) == 1
    assert repo.sent_message(DIGEST) == Sent(channel=LEAD, ts=message["ts"])


def test_crash_after_the_upload_finds_the_chart_in_the_thread_and_does_not_upload_again(
    slack: FakeSlack, repo: AlertRepo
) -> None:
    repo.record([digest_record(DIGEST, LEAD, NOW)], [])
    with pytest.raises(Crash):
        deliver(repo, _dying(DiesAfterAttach, slack), NOW)
    (row,) = repo.recent()
    assert row.status == "pending"
    (pending,) = repo.pending()
    message = _only_message(slack)
    assert pending.posted == Sent(channel=LEAD, ts=message["ts"])  # step one recorded

    report = deliver(repo, notifier(slack.base_url), NOW)

    assert (report.sent, report.recovered, report.attached) == (0, 1, 0)
    assert slack.count("conversations.replies") == 1
    assert slack.count("chat.postMessage") == 1
    assert slack.count("files.getUploadURLExternal") == 1  # the first try's only
    assert len(_charts(slack, message["ts"])) == 1
    assert repo.sent_message(DIGEST) == Sent(channel=LEAD, ts=message["ts"])


def test_a_failed_upload_keeps_the_alert_pending_and_the_retry_adds_only_the_chart(
    slack: FakeSlack, repo: AlertRepo
) -> None:
    later = datetime(2026, 6, 1, 12, 5, tzinfo=UTC)
    repo.record([digest_record(DIGEST, LEAD, NOW), record("a1", CHANNELS["cx-alerts"], later)], [])
    slack.upload_failures.append(503)

    first = deliver(repo, notifier(slack.base_url), NOW)

    assert first.error is not None
    assert "HTTP 503" in first.error
    assert first.deferred == 2  # an outage: the round stops, the next alert waits too
    assert {r.alert_id: r.status for r in repo.recent()} == {DIGEST: "pending", "a1": "pending"}
    message = _only_message(slack)
    assert _charts(slack, message["ts"]) == []

    second = deliver(repo, notifier(slack.base_url), NOW)

    assert (second.sent, second.attached, second.error) == (1, 1, None)  # a1, and the chart
    assert slack.count("chat.postMessage") == 2  # the digest's message once, and a1
    assert slack.count("conversations.replies") == 1  # looked before uploading again
    assert len(_charts(slack, message["ts"])) == 1
    (orphan,) = [f for f in slack.files.values() if f["data"] is None]  # never shared
    assert orphan["name"] == DIGEST_FILENAME
    assert {r.status for r in repo.recent()} == {"sent"}


def test_a_rate_limited_completion_is_retried_by_the_client_and_shared_once(
    slack: FakeSlack, repo: AlertRepo
) -> None:
    repo.record([digest_record(DIGEST, LEAD, NOW)], [])
    slack.fail("files.completeUploadExternal", 429, retry_after="0")

    report = deliver(repo, notifier(slack.base_url), NOW)

    assert report.attached == 1
    assert len(_charts(slack, _only_message(slack)["ts"])) == 1


def test_a_refused_upload_fails_only_that_alert_and_names_slacks_reason(
    slack: FakeSlack, repo: AlertRepo
) -> None:
    later = datetime(2026, 6, 1, 12, 5, tzinfo=UTC)
    repo.record([digest_record(DIGEST, LEAD, NOW), record("a1", CHANNELS["cx-alerts"], later)], [])
    slack.refuse("files.completeUploadExternal", "missing_scope")

    report = deliver(repo, notifier(slack.base_url), NOW)

    assert (report.failed, report.sent) == (1, 2)  # the digest's message and a1 went out
    rows = {r.alert_id: r for r in repo.recent()}
    assert rows[DIGEST].status == "failed"
    assert "missing_scope" in (rows[DIGEST].last_error or "")
    assert TOKEN not in (rows[DIGEST].last_error or "")
    assert rows["a1"].status == "sent"
    assert repo.pending() == []  # a person has to grant files:write; no retry loop
