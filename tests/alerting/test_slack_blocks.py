"""Block Kit content within Slack's limits: long texts are cut, never rejected."""

from __future__ import annotations

from datetime import UTC, datetime

from slackkit import content

from agent.alerts.model import Closure, DigestItem
from connectors.slack.blocks import (
    CLOSE_LOOP_ACTION,
    LIMITS,
    build_message,
    fallback_text,
    truncate,
)


def _dicts(blocks):  # type: ignore[no-untyped-def]
    return [b.to_dict() for b in blocks]  # to_dict validates slack_sdk's own limits


def test_an_alert_has_the_fields_a_cx_team_acts_on() -> None:
    blocks = _dicts(build_message(content("a1"), mention="<@U0OWNER>"))
    types = [b["type"] for b in blocks]
    assert types == ["header", "section", "section", "section", "context", "actions"]
    fields = " ".join(f["text"] for f in blocks[2]["fields"])
    for part in ("Acme", "1,250,000", "at_risk (32)", "-20", "3 (detractor)", "executive"):
        assert part in fields
    assert blocks[1]["text"]["text"].startswith("<@U0OWNER> :red_circle:")
    assert "> Support never answers." in blocks[3]["text"]["text"]
    assert blocks[4]["elements"][0]["text"].startswith("Why: detractor")
    buttons = blocks[5]["elements"]
    assert buttons[0]["url"] == "https://crm.example/A1"
    assert (buttons[1]["action_id"], buttons[1]["value"]) == (CLOSE_LOOP_ACTION, "a1")


def test_long_texts_are_truncated_to_slacks_limits() -> None:
    long = content("a1", comment="x" * 10_000, title="T" * 400, text="<b>" * 5000)
    blocks = _dicts(build_message(long))
    assert len(blocks[0]["text"]["text"]) == LIMITS["header"]
    assert blocks[0]["text"]["text"].endswith("…")
    assert all(len(b.get("text", {}).get("text", "")) <= 3000 for b in blocks)
    assert len(fallback_text(long)) <= LIMITS["text"]
    assert "&lt;b&gt;" in blocks[1]["text"]["text"]  # mrkdwn escaped


def test_digest_lists_items_and_the_rest() -> None:
    items = tuple(
        DigestItem(title=f"Rule {i}", text=f"alert {i}", severity="warning") for i in range(45)
    )
    digest = content(
        "d1", kind="digest", items=items, more=5, account=None, response=None, closable=False
    )
    blocks = _dicts(build_message(digest))
    assert len(blocks) <= LIMITS["blocks"]
    assert blocks[-2]["elements"][0]["text"] == "… and 5 more"
    assert sum(1 for b in blocks if "alert " in b.get("text", {}).get("text", "")) == 42


def test_a_closed_alert_shows_who_and_has_no_button() -> None:
    closure = Closure(
        closed_at=datetime(2026, 6, 2, 9, 30, tzinfo=UTC), closed_by="<@U1>", within_sla=True
    )
    blocks = _dicts(build_message(content("a1", closure=closure, closable=False)))
    text = str(blocks)
    assert "Loop closed by <@U1> at 2026-06-02 09:30 UTC, within the SLA" in text
    assert CLOSE_LOOP_ACTION not in text


def test_truncate() -> None:
    assert truncate("abc", 3) == "abc"
    assert truncate("abcd", 3) == "ab…"
