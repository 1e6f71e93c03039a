"""The Slack notifier and the delivery stage against a loopback fake of Slack's Web API."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from fake_slack import CHANNELS, FakeSlack
from slackkit import notifier, record

from agent.alerts.deliver import deliver
from agent.alerts.repo import AlertRepo
from connectors.common.errors import FatalError, RetriableError
from connectors.slack.notifier import METADATA_EVENT

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
CX = CHANNELS["cx-alerts"]


def test_post_sends_blocks_text_and_metadata(slack: FakeSlack, repo: AlertRepo) -> None:
    repo.record([record("a1", CX, NOW)], [])
    report = deliver(repo, notifier(slack.base_url), NOW)
    assert report.sent == 1
    (args,) = slack.posted()
    assert args["channel"] == CX
    assert args["text"].startswith("Detractor: Dana Exec at Acme scored 3")
    assert args["blocks"][0]["type"] == "header"
    assert args["metadata"] == {
        "event_type": METADATA_EVENT,
        "event_payload": {"alert_id": "a1", "rule_id": "detractor"},
    }
    sent = repo.sent_message("a1")
    assert sent is not None
    assert sent.ts == slack.messages[CX][0]["ts"]
    assert sent.channel == CX


def test_channel_names_are_resolved_once(slack: FakeSlack, repo: AlertRepo) -> None:
    repo.record([record("a1", "#cx-alerts", NOW), record("a2", "#cx-leadership", NOW)], [])
    deliver(repo, notifier(slack.base_url), NOW)
    # each channel has its own delivery lane: the two posts may go out in either order
    assert sorted(a["channel"] for a in slack.posted()) == sorted([CX, CHANNELS["cx-leadership"]])
    assert [m for m, _ in slack.calls].count("conversations.list") == 1


def test_owner_gets_a_dm_and_unknown_owner_falls_back(slack: FakeSlack, repo: AlertRepo) -> None:
    repo.record(
        [
            record("a1", CX, NOW, owner="owner@acme.example"),
            record("a2", CX, NOW, owner="nobody@acme.example"),
            record("a3", CX, NOW, owner="OWNER@acme.example"),
        ],
        [],
    )
    report = deliver(repo, notifier(slack.base_url), NOW)
    assert report.sent == 3
    # Two channels, sent side by side: the order holds within each channel only.
    assert sorted(a["channel"] for a in slack.posted()) == sorted(["D0OWNER", CX, "D0OWNER"])
    lookups = [args["email"] for method, args in slack.calls if method == "users.lookupByEmail"]
    assert lookups == ["owner@acme.example", "nobody@acme.example"]  # cached per email


def test_mention_resolves_the_owner(slack: FakeSlack) -> None:
    from agent.alerts.model import OutboxAlert

    rec = record("a1", CX, NOW)
    rec_content = rec.content.model_copy(update={"mention_email": "owner@acme.example"})
    alert = OutboxAlert("a1", "detractor", "alert", rec.destination, rec_content, 0, NOW)
    client = notifier(slack.base_url)
    client.send(alert, CX)
    assert slack.posted()[0]["text"].startswith("<@U0OWNER> Detractor")


def test_rate_limit_is_retried_with_retry_after(slack: FakeSlack, repo: AlertRepo) -> None:
    slack.fail("chat.postMessage", 429, times=1, retry_after="0")
    repo.record([record("a1", CX, NOW)], [])
    assert deliver(repo, notifier(slack.base_url), NOW).sent == 1
    assert len(slack.messages[CX]) == 1


def test_server_errors_are_retried(slack: FakeSlack, repo: AlertRepo) -> None:
    slack.fail("chat.postMessage", 503, times=1)
    repo.record([record("a1", CX, NOW)], [])
    assert deliver(repo, notifier(slack.base_url), NOW).sent == 1


def test_an_outage_leaves_everything_pending_then_delivers_once(
    slack: FakeSlack, repo: AlertRepo
) -> None:
    repo.record([record(f"a{i}", CX, NOW) for i in range(3)], [])
    slack.down = True
    report = deliver(repo, notifier(slack.base_url, retries=0), NOW)
    assert report.deferred == 3
    assert report.sent == 0
    assert report.error is not None
    assert "503" in report.error
    assert [a.attempts for a in repo.pending()] == [1, 0, 0]
    slack.down = False
    later = deliver(repo, notifier(slack.base_url), NOW)
    assert (later.sent, later.recovered) == (3, 0)
    ids = [m["metadata"]["event_payload"]["alert_id"] for m in slack.messages[CX]]
    assert sorted(ids) == ["a0", "a1", "a2"]


def test_a_maybe_sent_alert_is_found_by_metadata_not_sent_twice(
    slack: FakeSlack, repo: AlertRepo
) -> None:
    repo.record([record("a1", CX, NOW)], [])
    client = notifier(slack.base_url)
    alert = repo.pending()[0]
    repo.mark_attempt("a1", CX)
    posted = client.send(alert, CX)  # sent, but "crashed" before mark_sent
    report = deliver(repo, client, NOW)
    assert (report.recovered, report.sent) == (1, 0)
    assert len(slack.posted()) == 1
    assert repo.sent_message("a1") == posted
    history = [a for m, a in slack.calls if m == "conversations.history"]
    assert history[0]["include_all_metadata"] in ("1", "true")
    assert history[0]["channel"] == CX


def test_fatal_errors_mark_only_that_alert_failed(slack: FakeSlack, repo: AlertRepo) -> None:
    repo.record([record("a1", "C0UNKNOWN", NOW), record("a2", CX, NOW)], [])
    report = deliver(repo, notifier(slack.base_url), NOW)
    assert (report.failed, report.sent) == (1, 1)
    failed = {r.alert_id: r for r in repo.recent()}["a1"]
    assert failed.status == "failed"
    assert failed.last_error == "slack: chat.postMessage: channel_not_found"


def test_errors_are_classified(slack: FakeSlack) -> None:
    client = notifier(slack.base_url, retries=0)
    with pytest.raises(FatalError, match="channel #nope not found"):
        client.channel_id("#nope")
    slack.down = True
    with pytest.raises(RetriableError):
        client.user_id("x@acme.example")


def test_no_token_in_errors_or_requests_bodies(slack: FakeSlack, repo: AlertRepo) -> None:
    repo.record([record("a1", "C0UNKNOWN", NOW)], [])
    deliver(repo, notifier(slack.base_url), NOW)
    assert "xoxb" not in json.dumps([r.last_error for r in repo.recent()])
    assert all("token" not in args for _, args in slack.calls)
