"""Reading the records of the CRM folder's CSV files, exactly as DOMAIN.md counts them.

A record's ``position`` is its 1-based index among data records (header excluded):
a quoted field spanning lines is one record; a record whose fields are all empty
once spaces and tabs are trimmed is blank and not counted; a short record reads its
missing fields as empty; extra fields are ignored. Header names are trimmed and
lowercased. Each record keeps its exact text, so repeats can be compared byte by byte.
"""

from __future__ import annotations

import csv
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CrmFileNotFoundError",
    "CrmFormatError",
    "CsvRecord",
    "read_csv_records",
    "require_file",
    "without_terminator",
]


class CrmFileNotFoundError(FileNotFoundError):
    """The CRM folder, or a file it must hold, does not exist."""


class CrmFormatError(ValueError):
    """A CRM file cannot be read at all (not UTF-8, broken CSV, no ``id`` column)."""


@dataclass(frozen=True, slots=True)
class CsvRecord:
    """One data record: its position, its fields by header name, and its exact text."""

    position: int
    fields: dict[str, str]
    raw: str


def require_file(path: Path) -> None:
    """Raise ``CrmFileNotFoundError`` naming the folder or the file that is missing."""
    if path.is_file():
        return
    if not path.parent.is_dir():
        raise CrmFileNotFoundError(f"CRM folder not found: {path.parent}")
    raise CrmFileNotFoundError(f"CRM file not found: {path}")


def _lines(handle: Iterator[str], consumed: list[str]) -> Iterator[str]:
    """The file's lines, each also kept in ``consumed`` until the record is complete."""
    for line in handle:
        consumed.append(line)
        yield line


def read_csv_records(
    path: Path, *, required: Collection[str] = (), fold_case: bool = True
) -> Iterator[CsvRecord]:
    """The data records of a CSV file; an empty file has none.

    ``required`` columns must be in the header, else ``CrmFormatError``. Header names
    are lowercased unless ``fold_case`` is false (for files whose column names are
    configured names, such as the agent's own write-back files).
    """
    require_file(path)
    consumed: list[str] = []
    with path.open(encoding="utf-8-sig", newline="") as handle:
        rows = csv.reader(_lines(handle, consumed))
        header: _Header | None = None
        position = 0
        while True:
            consumed.clear()
            row = _next_row(rows, path, position)
            if row is None:
                return
            if not "".join(row).strip(" \t"):  # blank: no field, or only empty ones
                continue
            if header is None:
                header = _Header(row, path, required, fold_case=fold_case)
                continue
            position += 1
            yield CsvRecord(position, header.fields(row), without_terminator("".join(consumed)))


def without_terminator(text: str) -> str:
    if text.endswith("\r\n"):
        return text[:-2]
    if text.endswith(("\n", "\r")):
        return text[:-1]
    return text


def _next_row(rows: Iterator[list[str]], path: Path, position: int) -> list[str] | None:
    try:
        return next(rows)
    except StopIteration:
        return None
    except csv.Error as exc:
        raise CrmFormatError(f"{path.name}: record {position + 1} is not valid CSV: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise CrmFormatError(f"{path.name} is not UTF-8 text: {exc.reason}") from exc


class _Header:
    """Column names (trimmed, lowercased unless told not to; the first of a repeated name
    wins) and their positions."""

    def __init__(
        self, row: list[str], path: Path, required: Collection[str], *, fold_case: bool
    ) -> None:
        self.names = [_column(name, fold_case) for name in row]
        self.index: dict[str, int] = {}
        for position, key in enumerate(self.names):
            if key:
                self.index.setdefault(key, position)
        missing = [name for name in required if name not in self.index]
        if missing:
            raise CrmFormatError(f"{path.name} has no column {', '.join(missing)} in its header")
        #: Every column named once: a full row maps by position (the common, fast case).
        self.plain = list(self.index.values()) == list(range(len(row)))

    def fields(self, row: list[str]) -> dict[str, str]:
        if self.plain and len(row) >= len(self.names):
            return dict(zip(self.names, row, strict=False))
        return {name: row[i] if i < len(row) else "" for name, i in self.index.items()}


def _column(name: str, fold_case: bool) -> str:
    trimmed = name.strip(" \t")
    return trimmed.lower() if fold_case else trimmed
