"""What a digest stands for, in a preview: from the pass's own records, or read back."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Engine

from agent.alerts.model import Destination
from agent.alerts.preview import _members, _RememberingRepo, copy_alert_state
from agent.alerts.repo import OutboxRecord
from agent.state.dialect import create_state_engine
from tests.alerting.slackkit import content

NOW = datetime(2026, 6, 1, 12, tzinfo=UTC)


def _digest(ids: list[str], digest_id: str = "digest:C1:1") -> list[OutboxRecord]:
    to = Destination(channel="C1")
    members = [
        OutboxRecord(content(i, title=f"alert {i}"), "response", i, to, NOW, status="digested")
        for i in ids
    ]
    digest = OutboxRecord(
        content(digest_id, kind="digest", title=f"{len(ids)} new alerts"),
        "digest",
        "C1",
        to,
        NOW,
        members=tuple(ids),
    )
    return [*members, digest]


def test_a_digest_of_the_pass_lists_its_alerts_in_its_order_as_stored() -> None:
    ids = ["r9", "r1", "r5", "r3"]  # the digest's order, not the ids'
    with copy_alert_state(None) as engine:
        repo = _RememberingRepo(engine)
        assert repo.record(_digest(ids), []) == len(ids) + 1
        shown = repo.members("digest:C1:1")
        assert shown is not None
        assert [c.alert_id for c in shown] == ids
        assert sorted(shown, key=lambda c: c.alert_id) == sorted(
            _members(engine, "digest:C1:1"), key=lambda c: c.alert_id
        )  # the same contents as reading them back


def test_alerts_stored_before_the_pass_are_read_back() -> None:
    """The outbox keeps the first row of an id: where a digest or one of its alerts was
    stored before the pass, what the pass recorded is not what is stored."""
    with copy_alert_state(None) as engine:
        _RememberingRepo(engine).record(_digest(["r1"]), [])  # an earlier cycle's
        repo = _RememberingRepo(engine)
        again = [
            replace(r, content=r.content.model_copy(update={"text": "new"}))
            for r in _digest(["r1", "r2"], "digest:C1:2")
        ]
        repo.record(again, [])
        assert repo.members("digest:C1:2") is None  # r1 was stored before: read it back
        assert [c.text for c in _members(engine, "digest:C1:2") if c.alert_id == "r1"] != ["new"]
        assert repo.members("digest:C1:1") is None  # not this pass's digest


def test_the_private_copy_does_not_sync_its_commits_and_the_state_store_does(
    tmp_path: Path,
) -> None:
    """The preview's copy is thrown away: its commits are not synced to the disk (every
    connection of it, the delivery lanes' too), while the state store's are (FULL)."""

    def synchronous(engine: Engine) -> list[int]:
        raws = [engine.raw_connection() for _ in range(2)]  # two at once: two connections
        try:
            return [raw.cursor().execute("PRAGMA synchronous").fetchone()[0] for raw in raws]
        finally:
            for raw in raws:
                raw.close()

    with copy_alert_state(None) as engine:
        assert synchronous(engine) == [0, 0]  # OFF
    real = create_state_engine(f"sqlite:///{tmp_path / 'state.db'}")
    try:
        assert synchronous(real) == [2, 2]  # FULL
    finally:
        real.dispose()
