"""Answers appended to ``responses.csv`` are read alone, with the same outcome as a
whole read: the same stored answers, the same rejected records at the same positions.
Anything that would make the two differ (a repeated id, a rewritten or cut file, the
other responses file changing) reads the whole file, as before."""

from __future__ import annotations

import itertools
import os
import random
import shutil
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.core.models import Rejected, Response
from agent.core.timeutil import parse_instant
from agent.sources import plainfiles
from agent.sources.files import FilesSurveys
from agent.state.store import StateStore
from agent.sync.cycle import ingest_surveys

FIXTURE = Path(__file__).parent / "fixtures" / "three-accounts"
AS_OF = parse_instant("2025-06-01T12:00:00Z")
_READ_WHOLE = plainfiles.read_responses_with_csv
_WHOLE_READS = itertools.count()
HEADER = "response_id,email,score,submitted_at,driver,comment,account_hint,loop_closed_at\n"


def _folder(tmp_path: Path, rows: str = "") -> Path:
    folder = tmp_path / "crm"
    shutil.copytree(FIXTURE, folder)
    (folder / "responses.csv").write_text(HEADER + rows, encoding="utf-8")
    _age(folder / "responses.csv")
    return folder


def _age(path: Path) -> None:
    when = time.time() - 60
    os.utime(path, (when, when))


def _append(folder: Path, text: str, name: str = "responses.csv") -> None:
    with (folder / name).open("a", encoding="utf-8", newline="") as handle:
        handle.write(text)
    _age(folder / name)


def _reads(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    calls = {"whole": 0, "appended": 0}
    whole, appended = plainfiles.read_responses_with_csv, plainfiles.read_appended_responses

    def counted_whole(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["whole"] += 1
        return whole(*args, **kwargs)

    def counted_appended(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls["appended"] += 1
        return appended(*args, **kwargs)

    monkeypatch.setattr(plainfiles, "read_responses_with_csv", counted_whole)
    monkeypatch.setattr(plainfiles, "read_appended_responses", counted_appended)
    return calls


def _ingest(store: StateStore, folder: Path) -> list[Rejected]:
    return ingest_surveys(store, [FilesSurveys(folder, AS_OF, store.known_response_ids)])[1]


def _whole(folder: Path, tmp_path: Path) -> tuple[list[Response], list[Rejected]]:
    """What one whole read of the folder stores and rejects, into a fresh state."""
    path = tmp_path / f"whole-{next(_WHOLE_READS)}.db"
    responses, rejected, _ = _READ_WHOLE(folder, AS_OF)  # not counted as the agent's read
    with StateStore.open(f"sqlite:///{path}") as fresh:
        fresh.add_responses(responses)
        return fresh.load_responses(), rejected


def test_appended_answers_are_read_alone_and_numbered_after_the_others(
    tmp_path: Path, store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _folder(tmp_path, "r1,ann@alpha.com,3,2025-05-30T12:00:00Z,,,,\n")
    _ingest(store, folder)
    calls = _reads(monkeypatch)
    _append(
        folder,
        "r2,bob@alpha.com,eleven,2025-05-30T12:00:00Z,,,,\n"
        "\n"  # blank: not a record
        'r3,carl@alpha.com,9,2025-05-31T12:00:00Z,Support,"two\nlines",,\n'
        "r4,dan@alpha.com,8\n",
    )
    rejected = _ingest(store, folder)
    assert calls == {"whole": 0, "appended": 1}
    assert [(r.position, r.reason) for r in rejected] == [
        (2, "invalid_score"),
        (4, "wrong_field_count"),
    ]
    stored = store.load_responses()
    assert {r.response_id for r in stored} == {"r1", "r3"}
    assert (stored, rejected) == _whole(folder, tmp_path)
    _append(folder, "r5,ann@alpha.com,10,2025-05-31T13:00:00Z,,,,\n")  # and again
    rejected = _ingest(store, folder)
    assert calls == {"whole": 0, "appended": 2}
    assert (store.load_responses(), rejected) == _whole(folder, tmp_path)


@pytest.mark.parametrize(
    "appended",
    [
        "r1,ann@alpha.com,3,2025-05-30T12:00:00Z,,,,\n",  # an exact repeat: ignored
        "r1,ann@alpha.com,4,2025-05-30T12:00:00Z,,,,\n",  # another: duplicate_response_id
        "r2,bob@alpha.com,7,2025-05-30T12:00:00Z,,,,\n",  # the first r2 was rejected
    ],
)
def test_a_repeated_id_reads_the_whole_file(
    tmp_path: Path, store: StateStore, monkeypatch: pytest.MonkeyPatch, appended: str
) -> None:
    folder = _folder(
        tmp_path,
        "r1,ann@alpha.com,3,2025-05-30T12:00:00Z,,,,\nr2,bob@alpha.com,x,2025-05-30,,,,\n",
    )
    _ingest(store, folder)
    calls = _reads(monkeypatch)
    _append(folder, appended)
    rejected = _ingest(store, folder)
    assert calls["whole"] == 1
    assert (store.load_responses(), rejected) == _whole(folder, tmp_path)


def test_a_rewritten_cut_or_unfinished_file_is_read_whole(
    tmp_path: Path, store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _folder(tmp_path, "r1,ann@alpha.com,3,2025-05-30T12:00:00Z,,,,\n")
    _ingest(store, folder)
    calls = _reads(monkeypatch)
    path = folder / "responses.csv"
    path.write_text(path.read_text().replace("ann", "amy") + "r9,x@alpha.com,5,2025-05-01,,,,\n")
    _age(path)
    _ingest(store, folder)  # the part read before changed
    assert calls == {"whole": 1, "appended": 0}
    _append(folder, "r10,bob@alpha.com,5,2025-05-01,,,,")  # no line break at the end
    _ingest(store, folder)  # appended: read alone, but it does not end a record
    _append(folder, "\nr11,bob@alpha.com,6,2025-05-01,,,,\n")
    _ingest(store, folder)  # so the next change reads the whole file
    assert calls == {"whole": 2, "appended": 1}
    _append(folder, 'r12,bob@alpha.com,6,2025-05-01,,"open\n')  # a quote left open
    _ingest(store, folder)
    _append(folder, 'quote",,\n')
    rejected = _ingest(store, folder)
    assert calls == {"whole": 3, "appended": 2}
    # (r1 was rewritten: the store keeps its first content, a whole read the new one)
    assert rejected == _whole(folder, tmp_path)[1]


def test_a_change_to_the_json_lines_file_reads_both(
    tmp_path: Path, store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _folder(tmp_path, "r1,ann@alpha.com,3,2025-05-30T12:00:00Z,,,,\n")
    _append(
        folder, '{"response_id": "j1", "email": "bob@alpha.com", "score": 2}\n', "responses.jsonl"
    )
    _ingest(store, folder)
    calls = _reads(monkeypatch)
    _append(folder, "r2,carl@alpha.com,9,2025-05-01,,,,\n")
    _append(
        folder, '{"response_id": "j2", "email": "bob@alpha.com", "score": 11}\n', "responses.jsonl"
    )
    rejected = _ingest(store, folder)
    assert calls == {"whole": 1, "appended": 0}
    assert (store.load_responses(), rejected) == _whole(folder, tmp_path)


_IDS = [f"r{i}" for i in range(12)]
_EMAILS = ["ann@alpha.com", "bob@alpha.com", "hal@shared.example", "x@nowhere.io"]


def _row(rng: random.Random) -> str:
    rid, email = rng.choice(_IDS), rng.choice(_EMAILS)
    kind = rng.randrange(8)
    if kind == 0:
        return "\n"  # blank
    if kind == 1:
        return f"{rid},{email},{rng.choice(['11', 'x', ''])},2025-05-01,,,,\n"
    if kind == 2:
        return f"{rid},{email},5\n"  # too few fields
    if kind == 3:
        return f'{rid},{email},{rng.randrange(11)},2025-05-0{rng.randrange(1, 9)},,"a\nb",,\n'
    if kind == 4:
        return f"{rid},{email},7,2025-07-01,,,,\n"  # in the future
    return f"{rid},{email},{rng.randrange(11)},2025-05-{rng.randrange(10, 29)}T10:00:00Z,,,,\n"


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 2**32 - 1))
def test_reading_appends_alone_equals_one_whole_read(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    root = tmp_path / str(seed)
    root.mkdir()
    folder = _folder(root, "".join(_row(rng) for _ in range(rng.randrange(0, 4))))
    with StateStore.open(f"sqlite:///{root / 'state.db'}") as store:
        rejected = _ingest(store, folder)
        for _ in range(rng.randrange(1, 5)):
            _append(folder, "".join(_row(rng) for _ in range(rng.randrange(1, 5))))
            rejected = _ingest(store, folder)
        assert (store.load_responses(), rejected) == _whole(folder, root)
