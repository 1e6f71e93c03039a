"""Reading the records of the CRM folder's CSV files, exactly as DOMAIN.md counts them.

A record's ``position`` is its 1-based index among data records (header excluded):
a quoted field spanning lines is one record; a record whose fields are all empty
once spaces and tabs are trimmed is blank and not counted. Each record keeps its
exact text, so repeats can be compared byte by byte.

The header is checked before any record is read: a required column that is missing
is an error naming the file, the column and the nearest header present; a name that
appears twice is an error; names are matched trimmed and case-insensitively (a
notice is logged when that made a difference).

A record that cannot be read as the header says is still counted, and carries a
``fault`` (its reason) instead of being dropped or stopping the file:
``wrong_field_count`` (more or fewer fields than the header), ``field_too_large``
(a field longer than ``FIELD_LIMIT`` characters), ``unterminated_quote`` (a quoted
field still open at the end of the file) and ``invalid_record`` (text the CSV reader
refuses).
"""

from __future__ import annotations

import csv
import difflib
import io
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from itertools import chain
from pathlib import Path
from typing import TextIO

import structlog

from agent.core.models import printable

__all__ = [
    "FIELD_LIMIT",
    "FIELD_TOO_LARGE",
    "INVALID_CSV_RECORD",
    "UNTERMINATED_QUOTE",
    "VALUE_LIMIT",
    "WRONG_FIELD_COUNT",
    "CrmFileNotFoundError",
    "CrmFormatError",
    "CsvRecord",
    "CsvRows",
    "RowTuple",
    "clip",
    "read_csv_records",
    "require_file",
    "without_terminator",
]

log = structlog.get_logger(__name__)

#: Longest field a record may hold, in characters (a longer one rejects its record only).
FIELD_LIMIT = 131_072
#: A reject's ``value`` shows at most this many characters of the offending text.
VALUE_LIMIT = 80

WRONG_FIELD_COUNT = "wrong_field_count"
FIELD_TOO_LARGE = "field_too_large"
UNTERMINATED_QUOTE = "unterminated_quote"
INVALID_CSV_RECORD = "invalid_record"

#: The csv module's own limit is raised so that an over-long field reaches the check
#: above (which rejects its record) instead of stopping the whole file.
_READER_LIMIT = 2**31 - 1


class CrmFileNotFoundError(FileNotFoundError):
    """The CRM folder, or a file it must hold, does not exist."""


class CrmFormatError(ValueError):
    """A CRM file cannot be read at all (not UTF-8, a header without a required column)."""


@dataclass(frozen=True, slots=True)
class CsvRecord:
    """One data record: its position, its fields by header name, and its exact text.

    ``fault`` is set when the record could not be read as the header says; its
    ``fields`` are then empty and ``fault_value`` is the offending text.
    """

    position: int
    fields: dict[str, str]
    raw: str
    fault: str | None = None
    fault_value: str = ""


def clip(text: str) -> str:
    """The first ``VALUE_LIMIT`` characters of ``text``, printable as UTF-8."""
    return printable(text[:VALUE_LIMIT])


def require_file(path: Path) -> None:
    """Raise ``CrmFileNotFoundError`` naming the folder or the file that is missing."""
    if path.is_file():
        return
    if not path.parent.is_dir():
        raise CrmFileNotFoundError(f"CRM folder not found: {path.parent}")
    raise CrmFileNotFoundError(f"CRM file not found: {path}")


#: How many characters of lines are read at a time (``readlines`` hint).
_BLOCK = 1 << 20


class _Lines:
    """The file's lines for the CSV reader, read a block at a time and chained in C (no
    Python frame per line); the blocks not yet passed are kept, so the exact text of a
    record is taken from the reader's line count."""

    def __init__(self, handle: TextIO) -> None:
        self._handle = handle
        self._blocks: list[list[str]] = []
        self._base = 0  # the file's line number (0-based) of the first kept line
        self.iterator: Iterator[str] = chain.from_iterable(iter(self._read, []))

    def _read(self) -> list[str]:
        block = self._handle.readlines(_BLOCK)
        if block:
            self._blocks.append(block)
        return block

    def text(self, start: int, end: int) -> str:
        """The file's lines ``start`` to ``end - 1`` (0-based), joined; ``end > start``."""
        blocks = self._blocks
        first = blocks[0]
        while start - self._base >= len(first):  # blocks wholly passed are let go
            self._base += len(first)
            del blocks[0]
            first = blocks[0]
        offset = start - self._base
        if end - self._base <= len(first):
            return first[offset] if end == start + 1 else "".join(first[offset : end - self._base])
        parts: list[str] = []
        base = self._base
        for block in blocks:
            parts.extend(block[max(start - base, 0) : max(end - base, 0)])
            base += len(block)
            if base >= end:
                break
        return "".join(parts)


#: One data record as the fast path reads it: position, fields in header order (empty
#: when faulty), exact text, fault (or None) and the fault's value.
RowTuple = tuple[int, list[str], str, str | None, str]


class CsvRows:
    """The records of a CSV file as ``RowTuple`` values, without a mapping per record
    (the fast path of large files); ``index`` maps column names to field positions
    once the first record is read. Same rules and errors as ``read_csv_records``.
    """

    def __init__(
        self,
        path: Path,
        *,
        required: Collection[str] = (),
        known: Collection[str] = (),
        fold_case: bool = True,
        resume: tuple[int, int] | None = None,
    ) -> None:
        self.path = path
        self.required = required
        self.known = known
        self.fold_case = fold_case
        #: Read only the records from this byte offset on, the first of them numbered
        #: after this many records (the header is still read from the top): the part
        #: of a file appended after a read that ended there.
        self.resume = resume
        self.header: _Header | None = None

    @property
    def index(self) -> dict[str, int]:
        return self.header.index if self.header is not None else {}

    def __iter__(self) -> Iterator[RowTuple]:
        path = self.path
        require_file(path)
        if csv.field_size_limit() < _READER_LIMIT:
            csv.field_size_limit(_READER_LIMIT)
        with path.open(encoding="utf-8-sig", newline="") as handle:
            if self.resume is None:
                yield from self._records(handle, 0)
                return
            for _ in self._records(handle, 0):
                break  # only the header (and the first record, unused) is read
        offset, position = self.resume
        if self.header is None:
            raise CrmFormatError(f"{path.name}: no header before the appended records")
        with path.open("rb") as binary:
            binary.seek(offset)
            with io.TextIOWrapper(binary, encoding="utf-8", newline="") as tail:
                yield from self._records(tail, position)

    def _records(self, handle: TextIO, position: int) -> Iterator[RowTuple]:
        """The records read from ``handle`` (the header first, unless already read),
        numbered after ``position``."""
        path = self.path
        lines = _Lines(handle)
        rows = csv.reader(lines.iterator)
        header = self.header
        pending: RowTuple | None = None
        start = 0  # the handle's line (0-based) where the next record begins
        while True:  # once, plus once more after each record the CSV reader refuses
            error: str | None = None
            try:
                for row in rows:  # the reader's loop in C, no call of ours per record
                    end = rows.line_num  # every line read so far
                    raw = lines.text(start, end)
                    start = end
                    if not (row and row[0].strip(" \t")) and not "".join(row).strip(" \t"):
                        # blank: no field, or only empty ones (a first field with text: not blank)
                        continue
                    if header is None:
                        header = self.header = _Header(
                            row, path, self.required, self.known, fold_case=self.fold_case
                        )
                        continue
                    position += 1
                    record = header.row(position, row, raw)
                    if pending is not None:
                        yield pending
                    pending = record
            except csv.Error as exc:  # the reader starts afresh on the next line
                error = str(exc)
            except UnicodeDecodeError as exc:
                raise CrmFormatError(f"{path.name} is not UTF-8 text: {exc.reason}") from exc
            if error is None:
                break
            end = rows.line_num  # a faulty record's lines too
            raw = lines.text(start, end)
            start = end
            if header is None:
                raise CrmFormatError(f"{path.name}: the header is not valid CSV: {error}")
            position += 1
            if pending is not None:
                yield pending
            pending = _fault(position, raw, INVALID_CSV_RECORD)
        if pending is not None:
            yield _closed(pending)


def read_csv_records(
    path: Path,
    *,
    required: Collection[str] = (),
    known: Collection[str] = (),
    fold_case: bool = True,
) -> Iterator[CsvRecord]:
    """The data records of a CSV file; an empty file has none.

    ``required`` columns must be in the header, else ``CrmFormatError`` (suggesting
    the nearest header, preferring names outside ``known``, the file's other
    columns). Header names are lowercased unless ``fold_case`` is false (for files
    whose column names are configured names, such as the agent's own write-back files).
    """
    rows = CsvRows(path, required=required, known=known, fold_case=fold_case)
    for position, row, raw, fault, value in rows:
        if fault is not None:
            yield CsvRecord(position, {}, raw, fault, value)
            continue
        header = rows.header
        assert header is not None  # a record comes after the header
        if header.plain:
            yield CsvRecord(position, dict(zip(header.names, row, strict=True)), raw)
        else:
            yield CsvRecord(position, {name: row[i] for name, i in header.index.items()}, raw)


def _fault(position: int, raw: str, fault: str, value: str | None = None) -> RowTuple:
    """A record that could not be read; its value is ``value``, else its own text."""
    text = without_terminator(raw)
    return (position, [], text, fault, clip(text if value is None else value))


def _closed(last: RowTuple) -> RowTuple:
    """The last record, rejected when a quoted field in it is never closed (the reader
    would otherwise take the rest of the file as that field)."""
    raw = last[2]
    if '"' in raw and _open_quote(raw):
        return _fault(last[0], raw, UNTERMINATED_QUOTE)
    return last


def _open_quote(text: str) -> bool:
    """Whether ``text`` ends inside a quoted field (RFC 4180 quoting, comma-separated)."""
    quoted = False
    field_start = True
    index, end = 0, len(text)
    while index < end:
        char = text[index]
        if quoted:
            if char == '"':
                if index + 1 < end and text[index + 1] == '"':
                    index += 1
                else:
                    quoted = False
        elif char == '"' and field_start:
            quoted = True
        field_start = not quoted and char in ",\r\n"
        index += 1
    return quoted


def without_terminator(text: str) -> str:
    if text.endswith("\r\n"):
        return text[:-2]
    if text.endswith(("\n", "\r")):
        return text[:-1]
    return text


class _Header:
    """Column names (trimmed, lowercased unless told not to) and their positions."""

    def __init__(
        self,
        row: list[str],
        path: Path,
        required: Collection[str],
        known: Collection[str],
        *,
        fold_case: bool,
    ) -> None:
        self.names = [_column(name, fold_case) for name in row]
        self.width = len(row)
        self.index: dict[str, int] = {}
        for position, key in enumerate(self.names):
            if not key:
                continue
            if key in self.index:
                raise CrmFormatError(
                    f"{path.name}: column `{key}` appears twice in the header "
                    f"(columns {self.index[key] + 1} and {position + 1}); rename one of them"
                )
            self.index[key] = position
        missing = [name for name in required if name not in self.index]
        if missing:
            raise CrmFormatError(_missing_message(path.name, missing, self.names, known))
        renamed = [(raw, key) for raw, key in zip(row, self.names, strict=True) if raw != key]
        if renamed:
            log.warning(
                "crm_file.header_normalised",
                file=path.name,
                columns=", ".join(f"{raw!r} read as {key!r}" for raw, key in renamed),
            )
        #: Every column named: a row maps by position (the common, fast case).
        self.plain = len(self.index) == self.width

    def row(self, position: int, row: list[str], raw: str) -> RowTuple:
        if len(row) != self.width:
            return _fault(position, raw, WRONG_FIELD_COUNT)
        if len(raw) > FIELD_LIMIT:
            for value in row:
                if len(value) > FIELD_LIMIT:
                    return _fault(position, raw, FIELD_TOO_LARGE, value)
        if raw[-1:] == "\n":
            raw = raw[:-2] if raw[-2:-1] == "\r" else raw[:-1]
        elif raw[-1:] == "\r":
            raw = raw[:-1]
        return (position, row, raw, None, "")


def _missing_message(
    file: str, missing: list[str], present: list[str], known: Collection[str]
) -> str:
    """``accounts.csv: required column `revenue` is missing from the header; did you mean
    `annual_revenue`?`` (the nearest header the file does not otherwise use)."""
    names = [n for n in present if n]
    unknown = [n for n in names if n not in known]
    parts = []
    for name in missing:
        near = difflib.get_close_matches(name, unknown, n=1, cutoff=0.0)
        if near:
            hint = f"did you mean `{near[0]}`?"
        elif names:
            hint = f"the header has {', '.join(f'`{n}`' for n in names)}"
        else:
            hint = "the header is empty"
        parts.append(f"required column `{name}` is missing from the header; {hint}")
    return f"{file}: " + "; ".join(parts)


def _column(name: str, fold_case: bool) -> str:
    trimmed = name.strip(" \t")
    return trimmed.lower() if fold_case else trimmed
