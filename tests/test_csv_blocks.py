"""The CSV reader takes a record's exact text from lines read in blocks: the same
records, positions, texts and faults whatever the block size, records spanning blocks."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.sources import csvrecords
from agent.sources.csvrecords import CrmFormatError, CsvRows

CONTENT = (
    "id,name,note\r\n"
    "a1,Acme,plain\r\n"
    '"a2","Multi\nline\r\nname","quoted ""x"""\n'
    "\n"
    " \t, ,\r"
    "a3,Lone CR,ends\r"
    "a4,too,many,fields\n"
    'a5,"bad"x,field\n'
    '"a6","second\n\nmulti","ok"\r\n'
    "a7,,\n"
    ", x ,first field blank\n"
    'a8,last,"unterminated\nquote'
)


def _records(path: Path) -> list[tuple[object, ...]]:
    rows = CsvRows(path, required=("id",))
    return [(pos, list(row), raw, fault, value) for pos, row, raw, fault, value in rows]


def _reference(path: Path) -> list[str]:
    """Each record's text, by the plain line-by-line reading."""
    consumed: list[str] = []

    def lines() -> Iterator[str]:
        with path.open(encoding="utf-8-sig", newline="") as handle:
            for line in handle:
                consumed.append(line)
                yield line

    texts = []
    reader = csv.reader(lines())
    while True:
        consumed.clear()
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error:
            row = ["fault"]
        if row and "".join(row).strip(" \t"):
            texts.append("".join(consumed))
    return texts[1:]  # the header


@pytest.mark.parametrize("block", [1, 2, 5, 17, 64, 1 << 20])
def test_same_records_whatever_the_block_size(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, block: int
) -> None:
    path = tmp_path / "accounts.csv"
    path.write_bytes(CONTENT.encode())
    expected = _records(path)  # default block: the whole file in one
    monkeypatch.setattr(csvrecords, "_BLOCK", block)
    assert _records(path) == expected


def test_record_texts_are_exact_across_lines(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "accounts.csv"
    path.write_bytes(CONTENT.encode())
    monkeypatch.setattr(csvrecords, "_BLOCK", 3)
    records = _records(path)
    reference = _reference(path)
    assert len(records) == len(reference) == 9
    for (_pos, _row, raw, _fault, _value), text in zip(records, reference, strict=True):
        assert isinstance(raw, str)
        assert text.startswith(raw)  # the reader drops the line end of a sound record
    assert [r[0] for r in records] == list(range(1, 10))
    assert records[1][2] == '"a2","Multi\nline\r\nname","quoted ""x"""'
    assert records[1][1] == ["a2", "Multi\nline\r\nname", 'quoted "x"']
    assert records[5][2] == '"a6","second\n\nmulti","ok"'
    assert records[3][3] == "wrong_field_count"
    assert records[7][1] == ["", " x ", "first field blank"]
    assert records[8][3] is not None  # the unterminated quote at the end


def test_a_file_larger_than_a_block_keeps_every_record(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "accounts.csv"
    body = "".join(f'a{i},"name\n{i}",n{i}\n' for i in range(500))
    path.write_text("id,name,note\n" + body, encoding="utf-8")
    monkeypatch.setattr(csvrecords, "_BLOCK", 100)
    records = _records(path)
    assert [r[1] for r in records] == [[f"a{i}", f"name\n{i}", f"n{i}"] for i in range(500)]
    assert [r[2] for r in records] == [f'a{i},"name\n{i}",n{i}' for i in range(500)]


def test_a_record_the_csv_reader_refuses_is_counted_and_reading_goes_on(
    tmp_path: Path,
) -> None:
    # A lone CR inside a line makes the CSV reader raise; a file opened as CsvRows opens
    # it never has one (any CR ends a line there), a handle split on LF only does.
    rows = CsvRows(tmp_path / "accounts.csv", required=("id",))
    handle = io.StringIO("id,name\na1,x\nbad\ra2,y\na3,z\nno\rpe\n", newline="\n")
    records = list(rows._records(handle, 0))
    assert [(pos, row, raw, fault) for pos, row, raw, fault, _ in records] == [
        (1, ["a1", "x"], "a1,x", None),
        (2, [], "bad\ra2,y", "invalid_record"),
        (3, ["a3", "z"], "a3,z", None),
        (4, [], "no\rpe", "invalid_record"),
    ]


def test_a_header_the_csv_reader_refuses_stops_the_file(tmp_path: Path) -> None:
    rows = CsvRows(tmp_path / "accounts.csv", required=("id",))
    with pytest.raises(CrmFormatError, match=r"accounts\.csv: the header is not valid CSV"):
        list(rows._records(io.StringIO("i\rd,name\na1,x\n", newline="\n"), 0))
