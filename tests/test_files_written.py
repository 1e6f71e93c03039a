"""The plain-file CRM's write merges its batch into ``ax_*.csv`` as it reads the file,
without holding the whole file: it must write byte for byte what the whole-file write
wrote before it (kept below as ``_reference_write``), for every file a person may leave
there (unsorted, repeated ids, rows without an id, broken records, other columns) and
every batch, and it must never leave a half-written file."""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from structlog.testing import capture_logs

from agent.core.ports import FieldUpdate, FieldValue
from agent.sources import plainfiles
from agent.sources.csvrecords import CrmFormatError, read_csv_records
from agent.sources.files import FilesCrm, written_file
from agent.sources.ingest import trim

# --- the whole-file write, as it was: the reference -----------------------------------


def _reference_read(path: Path) -> dict[str, dict[str, str]]:
    if not path.is_file():
        return {}
    written: dict[str, dict[str, str]] = {}
    for record in read_csv_records(path, required=("id",), fold_case=False):
        if record.fault is not None:
            continue
        record_id = trim(record.fields.pop("id"))
        if record_id:
            written[record_id] = record.fields
    return written


def _reference_cell(value: FieldValue) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ";".join(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _reference_write(path: Path, updates: Sequence[FieldUpdate]) -> bytes:
    """What the whole-file write wrote: the file as a mapping (a later row of an id
    replaces an earlier one), the batch over it, every row sorted by id."""
    rows = _reference_read(path)
    seen: dict[str, None] = {}
    for row in rows.values():
        seen.update(dict.fromkeys(row))
    columns = list(seen)
    for update in updates:
        row = rows.setdefault(update.record_id, {})
        for name, value in update.values.items():
            row[name] = _reference_cell(value)
            if name not in columns:
                columns.append(name)
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(["id", *columns])
    for rid in sorted(rows):
        writer.writerow([rid, *(rows[rid].get(c, "") for c in columns)])
    return out.getvalue().encode("utf-8")


# --- random files and batches -----------------------------------------------------------

_IDS = ("A1", "A10", "A2", "B", "b", "Ä", "é", "z z", "a,b", 'q"t', "two\nlines", "x" * 3)
_NAMES = ("nps", "NPS", "health_score", "tier", "note", "Größe", "a,b", 'say "hi"', "id")
_TEXT = st.text(
    alphabet=st.sampled_from(["a", "Z", "0", " ", "\t", ",", '"', "\n", "\r", "é", "😀", ";"]),
    max_size=6,
)
_VALUES: st.SearchStrategy[FieldValue] = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-1000, 1000),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    _TEXT,
    st.tuples(_TEXT, _TEXT),
    st.datetimes(
        min_value=datetime(2020, 1, 1),  # hypothesis takes naive bounds
        max_value=datetime(2030, 1, 1),
        timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5))]),
    ),
)
_BATCH_IDS = st.one_of(st.sampled_from(_IDS), st.sampled_from(["A3", "C", "", " A1", "ü"]))
_UPDATES = st.lists(
    st.builds(
        FieldUpdate,
        _BATCH_IDS,
        st.dictionaries(
            st.sampled_from((*_NAMES, "new", "Später")), _VALUES, min_size=1, max_size=4
        ),
    ),
    max_size=12,
)


@st.composite
def _written_files(draw: st.DrawFn) -> bytes | None:
    """A write-back file as the agent writes it, or as a person may leave it."""
    kind = draw(st.sampled_from(["missing", "empty", "sorted", "sorted", "sorted", "edited"]))
    if kind == "missing":
        return None
    if kind == "empty":
        return b""
    others = draw(st.lists(st.sampled_from(("nps", "note", "Größe", "a,b", "")), unique=True))
    header, at_id = [*others], draw(st.integers(0, len(others)))
    header.insert(at_id, draw(st.sampled_from(["id", " id"])))
    if kind == "sorted":  # as written, unless an id repeats; rows without an id anywhere
        ids = sorted(draw(st.lists(st.sampled_from(_IDS), unique=draw(st.booleans()), max_size=8)))
        for _ in range(draw(st.integers(0, 2))):
            ids.insert(draw(st.integers(0, len(ids))), draw(st.sampled_from(["", "  "])))
    else:  # a person's edit: any order, repeats, spaced or missing ids
        ids = draw(st.lists(st.sampled_from((*_IDS, "", "  ", " A1")), max_size=8))
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator=draw(st.sampled_from(["\r\n", "\n"])))
    writer.writerow(header)
    for rid in ids:
        row = [draw(_TEXT) for _ in header]
        row[at_id] = rid
        writer.writerow(row)
        if draw(st.integers(0, 5)) == 0:  # a blank line, a broken record
            out.write(draw(st.sampled_from(["\n", "too,many,fields,here,now,yes\n", "  ,\t\n"])))
    text = out.getvalue()
    if draw(st.booleans()) and kind == "edited":
        text = text[: draw(st.integers(0, len(text)))]  # cut short, mid-record perhaps
    bom = draw(st.sampled_from([b"", b"", b"\xef\xbb\xbf"]))
    return bom + text.encode("utf-8")


def _reference_skipped(path: Path) -> list[tuple[str, int, str | None]]:
    """The records the whole-file read skipped with a warning: those it cannot read."""
    if not path.is_file():
        return []
    try:
        records = list(read_csv_records(path, required=("id",), fold_case=False))
    except CrmFormatError:
        return []
    return [(path.name, r.position, r.fault) for r in records if r.fault is not None]


def _write(
    folder: Path, updates: Sequence[FieldUpdate]
) -> tuple[object, list[tuple[str, int, str | None]]]:
    """The write's outcome (the file's bytes, or the error) and its skipped-row warnings."""
    with capture_logs() as logs:
        try:
            FilesCrm(folder).write("account", updates)
        except CrmFormatError as exc:
            outcome: object = ("error", str(exc))
        else:
            outcome = written_file(folder, "account").read_bytes()
    skipped = [
        (e["file"], e["position"], e["reason"])
        for e in logs
        if e["event"] == "crm_file.written_row_skipped"
    ]
    return outcome, skipped


@settings(max_examples=400, deadline=None)
@given(_written_files(), _UPDATES)
def test_the_merged_write_is_byte_for_byte_the_whole_file_write(
    content: bytes | None, updates: list[FieldUpdate]
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        path = written_file(folder, "account")
        if content is not None:
            path.write_bytes(content)
        try:
            expected: object = _reference_write(path, updates)
        except CrmFormatError as exc:
            expected = ("error", str(exc))
        expected_skipped = _reference_skipped(path)
        outcome, skipped = _write(folder, updates)
        assert outcome == expected
        assert skipped == expected_skipped
        if isinstance(expected, tuple):  # refused: the file is as it was
            assert (path.read_bytes() if path.exists() else None) == content
        assert os.listdir(folder) == ([path.name] if path.exists() else [])  # no temp file


# --- how the file is read ---------------------------------------------------------------


def _no_whole_read(path: Path) -> dict[str, dict[str, str]]:
    raise AssertionError(f"{path.name} read whole into memory")


def test_a_file_as_the_agent_wrote_it_is_merged_without_reading_it_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = written_file(tmp_path, "contact")
    path.write_text("id,tier,note\r\nC1,frontline,kept\r\nC3,manager,\r\n", encoding="utf-8")
    monkeypatch.setattr(plainfiles, "read_written", _no_whole_read)
    FilesCrm(tmp_path).write(
        "contact",
        [
            FieldUpdate("C4", {"tier": "executive"}),
            FieldUpdate("C3", {"tier": "executive", "last_score": 9}),
            FieldUpdate("C2", {"last_score": None}),
            FieldUpdate("C3", {"last_score": 10}),  # a later update of a record wins
        ],
    )
    assert path.read_text(encoding="utf-8").splitlines() == [
        "id,tier,note,last_score",
        "C1,frontline,kept,",
        "C2,,,",
        "C3,executive,,10",
        "C4,executive,,",
    ]


def test_a_file_a_person_reordered_is_merged_in_memory_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = written_file(tmp_path, "contact")
    path.write_text("id,tier\nC3,manager\nC1,frontline\nbroken,row,here\nC3,executive\n")
    whole_reads: list[Path] = []
    read_whole = plainfiles.read_written

    def counted(path: Path) -> dict[str, dict[str, str]]:
        whole_reads.append(path)
        return read_whole(path)

    monkeypatch.setattr(plainfiles, "read_written", counted)
    with capture_logs() as logs:
        FilesCrm(tmp_path).write("contact", [FieldUpdate("C2", {"tier": "unknown"})])
    assert whole_reads == [path]
    # sorted, the later C3 row in place of the earlier one
    assert path.read_text().splitlines() == [
        "id,tier",
        "C1,frontline",
        "C2,unknown",
        "C3,executive",
    ]
    skipped = [e for e in logs if e["event"] == "crm_file.written_row_skipped"]
    assert [(e["position"], e["reason"]) for e in skipped] == [(3, "wrong_field_count")]  # once


def test_a_read_failing_half_way_through_the_merge_leaves_the_file_as_it_was(
    tmp_path: Path,
) -> None:
    path = written_file(tmp_path, "contact")
    rows = "".join(f"C{i:06d},{'x' * 40}\n" for i in range(30_000))  # past one read block
    content = ("id,note\nC,too,many\n" + rows).encode() + b"\xff\n"  # not UTF-8, at the end
    path.write_bytes(content)
    with capture_logs() as logs, pytest.raises(CrmFormatError, match=r"ax_contacts\.csv"):
        FilesCrm(tmp_path).write("contact", [FieldUpdate("C000001", {"note": "new"})])
    assert path.read_bytes() == content
    assert os.listdir(tmp_path) == [path.name]  # the half-written file is gone
    skipped = [e for e in logs if e["event"] == "crm_file.written_row_skipped"]
    assert [(e["position"], e["reason"]) for e in skipped] == [(1, "wrong_field_count")]
