"""The survey file drop: each file once, rejected rows reported, files moved, crash-safe."""

from __future__ import annotations

import csv
import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.config.service import FileDropSettings
from agent.service.checkpoint import Checkpoints, Interrupted
from agent.service.filedrop import ATTEMPTS, FileDrop
from agent.state.store import StateStore
from tests.service.portfolio import Portfolio, write_csv, write_jsonl

NOW = datetime.now(UTC)


@pytest.fixture
def drop(tmp_path: Path) -> Path:
    folder = tmp_path / "drop"
    folder.mkdir()
    return folder


def _filedrop(drop: Path, store: StateStore, settle: float = 0) -> FileDrop:
    return FileDrop(FileDropSettings(path=drop, settle_seconds=settle), store)


def _report(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(handle))


def test_a_csv_export_is_ingested_reported_and_moved(drop: Path, store: StateStore) -> None:
    rows = Portfolio().response_rows(NOW)
    rows.insert(1, {**rows[0], "response_id": "bad-score", "score": "11"})
    rows.append({**rows[0], "response_id": "", "score": "5"})
    write_csv(drop / "export.csv", rows)
    counts = _filedrop(drop, store).scan(NOW)
    assert (counts.files, counts.accepted, counts.rejected) == (1, 9, 2)
    assert counts.detractors == 3
    assert not (drop / "export.csv").exists()
    assert (drop / "processed" / "export.csv").is_file()
    assert _report(drop / "processed" / "export.csv.rejected.csv") == [
        ["source", "position", "reason", "value"],
        ["export.csv", "2", "invalid_score", "11"],
        ["export.csv", "11", "missing_response_id", ""],
    ]
    assert store.count_responses() == 9
    assert {r.source for r in store.load_responses()} == {"file_drop"}


def test_json_lines_are_read_with_the_same_rules(drop: Path, store: StateStore) -> None:
    rows = Portfolio().response_rows(NOW)[:2]
    path = write_jsonl(drop / "push.jsonl", rows)
    with path.open("a", encoding="utf-8") as handle:
        handle.write("not json\n")
    counts = _filedrop(drop, store).scan(NOW)
    assert (counts.accepted, counts.rejected) == (2, 1)
    assert _report(drop / "processed" / "push.jsonl.rejected.csv")[1] == [
        "push.jsonl",
        "3",
        "invalid_record",
        "not json",
    ]


def test_the_same_content_dropped_again_is_only_moved(drop: Path, store: StateStore) -> None:
    rows = Portfolio().response_rows(NOW)
    write_csv(drop / "export.csv", rows)
    _filedrop(drop, store).scan(NOW)
    write_csv(drop / "export-copy.csv", rows)
    counts = _filedrop(drop, store).scan(NOW)
    assert (counts.files, counts.repeated_files, counts.accepted) == (0, 1, 0)
    assert (drop / "processed" / "export-copy.csv").is_file()
    assert store.count_responses() == len(rows)


def test_a_new_file_under_a_used_name_keeps_both(drop: Path, store: StateStore) -> None:
    rows = Portfolio().response_rows(NOW)
    write_csv(drop / "daily.csv", rows[:3])
    _filedrop(drop, store).scan(NOW)
    write_csv(drop / "daily.csv", rows[3:])
    _filedrop(drop, store).scan(NOW)
    processed = {p.name for p in (drop / "processed").iterdir()}
    assert "daily.csv" in processed
    (other,) = processed - {"daily.csv"}
    assert other.startswith("daily.")
    assert other.endswith(".csv")
    assert store.count_responses() == len(rows)


def test_overlapping_exports_store_each_response_once(drop: Path, store: StateStore) -> None:
    rows = Portfolio().response_rows(NOW)
    write_csv(drop / "monday.csv", rows[:6])
    write_csv(drop / "tuesday.csv", rows[3:])
    counts = _filedrop(drop, store).scan(NOW)
    assert (counts.files, counts.accepted, counts.repeated) == (2, len(rows), 3)
    assert store.count_responses() == len(rows)


def test_files_still_being_written_hidden_or_of_other_types_wait(
    drop: Path, store: StateStore
) -> None:
    rows = Portfolio().response_rows(NOW)
    write_csv(drop / "fresh.csv", rows)
    write_csv(drop / ".partial.csv", rows)
    (drop / "notes.txt").write_text("hello")
    assert _filedrop(drop, store, settle=60).scan(NOW).files == 0
    old = time.time() - 120
    os.utime(drop / "fresh.csv", (old, old))
    assert _filedrop(drop, store, settle=60).scan(NOW).files == 1
    assert sorted(p.name for p in drop.iterdir() if p.is_file()) == [".partial.csv", "notes.txt"]


def test_an_unreadable_file_goes_to_failed_with_its_reason(drop: Path, store: StateStore) -> None:
    (drop / "latin1.csv").write_bytes("response_id,score\nr1,3,caf\xe9\n".encode("latin-1"))
    counts = _filedrop(drop, store).scan(NOW)
    assert counts.failed_files == 1
    assert (drop / "failed" / "latin1.csv").is_file()
    assert "UTF-8" in (drop / "failed" / "latin1.csv.error.txt").read_text()
    assert store.count_responses() == 0
    assert not store.file_seen("anything")


def test_a_crash_between_commit_and_move_does_not_ingest_twice(
    drop: Path, store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = Portfolio().response_rows(NOW)
    write_csv(drop / "export.csv", rows)
    from agent.service import filedrop

    def crash(_path: Path, _target: Path) -> None:
        raise KeyboardInterrupt("killed after the commit, before the move")

    monkeypatch.setattr(filedrop, "_move", crash)
    with pytest.raises(KeyboardInterrupt):
        _filedrop(drop, store).scan(NOW)
    monkeypatch.undo()
    assert store.count_responses() == len(rows)  # committed with the file's hash
    counts = _filedrop(drop, store).scan(NOW)
    assert (counts.files, counts.repeated_files, counts.accepted) == (0, 1, 0)
    assert (drop / "processed" / "export.csv").is_file()
    assert store.count_responses() == len(rows)


def test_a_stop_request_is_honoured_between_files(drop: Path, store: StateStore) -> None:
    rows = Portfolio().response_rows(NOW)
    write_csv(drop / "a.csv", rows[:3])
    write_csv(drop / "b.csv", rows[3:])
    checkpoints = Checkpoints()
    filedrop = _filedrop(drop, store)
    original = filedrop._one

    def one_then_stop(path: Path, digest: str, as_of: datetime, counts: object) -> None:
        original(path, digest, as_of, counts)  # type: ignore[arg-type]
        checkpoints.stop.set()

    filedrop._one = one_then_stop  # type: ignore[method-assign]
    with pytest.raises(Interrupted):
        filedrop.scan(NOW, checkpoints)
    assert len([p for p in drop.iterdir() if p.suffix == ".csv"]) == 1  # the second waits


def test_future_answers_are_rejected_relative_to_now(drop: Path, store: StateStore) -> None:
    row = {
        **Portfolio().response_rows(NOW)[0],
        "submitted_at": (NOW + timedelta(days=1)).isoformat(),
    }
    write_csv(drop / "x.csv", [row])
    assert _filedrop(drop, store).scan(NOW).rejected == 1


def test_poison_json_lines_are_rejected_records_and_the_file_goes_through(
    drop: Path, store: StateStore
) -> None:
    """A line nested 100,000 deep and a lone surrogate used to stop ingestion for good."""
    rows = Portfolio().response_rows(NOW)[:2]
    deep = '{"response_id": "deep", "comment": ' + "[" * 100_000 + "]" * 100_000 + "}"
    lone = json.dumps({**rows[0], "response_id": "lone", "comment": "\ud800"})
    (drop / "a.jsonl").write_text(
        json.dumps(rows[0]) + "\n" + deep + "\n" + lone + "\n", encoding="utf-8"
    )
    write_jsonl(drop / "b.jsonl", rows[1:])
    counts = _filedrop(drop, store).scan(NOW)
    assert (counts.files, counts.accepted, counts.rejected, counts.failed_files) == (2, 2, 2, 0)
    report = _report(drop / "processed" / "a.jsonl.rejected.csv")
    assert [row[:3] for row in report[1:]] == [
        ["a.jsonl", "2", "invalid_record"],
        ["a.jsonl", "3", "invalid_record"],
    ]
    assert report[1][3] == deep[:80]
    assert report[2][3] == lone[:80]
    assert sorted(p.name for p in drop.iterdir() if p.is_file()) == []


def test_a_file_failing_again_and_again_goes_to_failed_and_the_others_go_on(
    drop: Path, store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent.service import filedrop

    rows = Portfolio().response_rows(NOW)
    poison = write_jsonl(drop / "a-poison.jsonl", rows[:1])
    os.utime(poison, (time.time() - 100, time.time() - 100))  # sorted first
    real = filedrop.read_response_file

    def read(path: Path, as_of: datetime):  # type: ignore[no-untyped-def]
        if path.name == "a-poison.jsonl":
            raise RecursionError("maximum recursion depth exceeded")
        return real(path, as_of)

    monkeypatch.setattr(filedrop, "read_response_file", read)
    fd = FileDrop(FileDropSettings(path=drop, settle_seconds=0, max_tries=3), store)
    for attempt, name in ((1, "b.jsonl"), (2, "c.jsonl")):
        write_jsonl(drop / name, rows[attempt : attempt + 1])
        with pytest.raises(
            filedrop.DropFilesFailedError, match=rf"a-poison\.jsonl: try {attempt} of 3"
        ):
            fd.scan(NOW)
        assert (drop / "processed" / name).is_file()  # the file after it went on
        assert poison.is_file()
    write_jsonl(drop / "d.jsonl", rows[3:4])
    counts = fd.scan(NOW)  # the third failure sets it aside: the job is green again
    assert (counts.files, counts.failed_files) == (1, 1)
    assert (drop / "failed" / "a-poison.jsonl").is_file()
    reason = (drop / "failed" / "a-poison.jsonl.error.txt").read_text(encoding="utf-8")
    assert "could not be processed after 3 tries: RecursionError" in reason
    assert store.count_responses() == 3
    assert fd.scan(NOW).failed_files == 0
    assert not any((drop / ".attempts").iterdir())


def test_an_unreachable_database_counts_no_try(
    drop: Path, store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from sqlalchemy.exc import OperationalError

    write_jsonl(drop / "a.jsonl", Portfolio().response_rows(NOW)[:1])

    def down(*_args: object) -> None:
        raise OperationalError("SELECT 1", {}, Exception("connection refused"))

    monkeypatch.setattr(store, "file_seen", down)
    fd = FileDrop(FileDropSettings(path=drop, settle_seconds=0, max_tries=1), store)
    with pytest.raises(OperationalError):
        fd.scan(NOW)
    assert (drop / "a.jsonl").is_file()
    assert not (drop / "failed").exists()


def test_the_ingest_job_goes_green_once_a_poison_file_is_set_aside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent.service import filedrop
    from tests.service.agentkit import agent_settings, build_agent

    drop = tmp_path / "drop"
    drop.mkdir()
    settings = agent_settings(tmp_path, file_drop={"path": drop, "settle_seconds": 0})
    rows = Portfolio().response_rows(NOW)
    deep = '{"response_id": "deep", "comment": ' + "[" * 100_000 + "]" * 100_000 + "}"
    (drop / "a-poison.jsonl").write_text(deep + "\n", encoding="utf-8")
    os.utime(drop / "a-poison.jsonl", (time.time() - 100, time.time() - 100))
    write_jsonl(drop / "b.jsonl", [{**rows[0], "response_id": "from-b"}])
    real = filedrop.read_response_file

    def read(path: Path, as_of: datetime):  # type: ignore[no-untyped-def]
        if path.name.startswith("a-poison"):
            raise UnicodeEncodeError("utf-8", "\ud800", 0, 1, "surrogates not allowed")
        return real(path, as_of)

    monkeypatch.setattr(filedrop, "read_response_file", read)
    outcomes = []
    for _ in range(4):  # as `run --once` from cron: one process each time
        agent = build_agent(settings)
        try:
            results = {r.job: r for r in agent.run_once()}
            outcomes.append(results["survey_ingest"].ok)
            stored = {r.response_id for r in agent.store.load_responses()}
            cycle = next(c for c in agent.store.recent_cycles(50) if c.job == "survey_ingest")
        finally:
            agent.store.close()
            agent.leadership.release()
        assert "from-b" in stored  # the file after the poison one went in at once
    assert outcomes == [False, False, True, True]
    assert (drop / "failed" / "a-poison.jsonl").is_file()
    assert cycle.counts.get("drop_failed_files") == 0


def test_a_failing_hook_after_the_commit_leaves_the_file_done(
    drop: Path, store: StateStore
) -> None:
    """The answers are stored and the file moved before the hook is told: its failure is
    a warning, not a failed try of a file that is gone from the folder."""
    write_csv(drop / "export.csv", Portfolio().response_rows(NOW)[:3])

    def broken(_added: object) -> None:
        raise RuntimeError("the figures could not take them")

    drop_folder = FileDrop(FileDropSettings(path=drop, settle_seconds=0), store, on_stored=broken)
    counts = drop_folder.scan(NOW)  # no DropFilesFailedError
    assert (counts.files, counts.accepted, counts.failed_files) == (1, 3, 0)
    assert (drop / "processed" / "export.csv").is_file()
    attempts = drop / ATTEMPTS
    assert not attempts.exists() or not any(attempts.iterdir())
    assert store.count_responses() == 3
