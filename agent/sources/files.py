"""The plain-file CRM: a folder in DOMAIN.md's format, the embedded default.

Reads ``accounts.csv`` / ``contacts.csv`` (and survey responses) through
``agent.sources.plainfiles``; writes the agent's figures to ``ax_accounts.csv`` and
``ax_contacts.csv`` beside them, keyed by id, each rewrite atomic (temporary file,
then rename) so a crash leaves the old or the new file, never half of one.
"""

from __future__ import annotations

import csv
import hashlib
import os
import tempfile
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path

import structlog

from agent.core.contract import FieldSpec, ObjectKind
from agent.core.models import Account, Contact, Rejected
from agent.core.ports import Batch, FieldProblem, FieldUpdate, FieldValue, SurveyBatch, WriteOutcome
from agent.sources import plainfiles

__all__ = ["FilesCrm", "FilesSurveys", "written_file"]

_log = structlog.get_logger(__name__)
_WRITTEN = {"account": "ax_accounts.csv", "contact": "ax_contacts.csv"}


def written_file(folder: Path, obj: ObjectKind) -> Path:
    """Where the figures for ``obj`` are written in ``folder``."""
    return folder / _WRITTEN[obj]


class FilesCrm:
    """A CrmConnector over a folder. A changed source file is re-read whole."""

    name = "files"
    #: One write rewrites one file: the whole plan fits in one batch.
    max_write_batch = 1_000_000

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def read_accounts(self, cursor: str | None) -> Iterator[Batch[Account]]:
        digest = _digest(self.folder / "accounts.csv", written_file(self.folder, "account"))
        if cursor == digest:
            return
        rejected: list[Rejected] = []
        accounts = plainfiles.read_accounts(
            self.folder / "accounts.csv",
            rejected=rejected,
            written=plainfiles.read_written(written_file(self.folder, "account")),
        )
        _report(rejected)
        yield Batch(records=accounts, cursor=digest, snapshot=True)

    def read_contacts(self, cursor: str | None) -> Iterator[Batch[Contact]]:
        digest = _digest(
            self.folder / "contacts.csv",
            self.folder / "accounts.csv",
            written_file(self.folder, "contact"),
        )
        if cursor == digest:
            return
        account_ids = {a.id for a in plainfiles.read_accounts(self.folder / "accounts.csv")}
        rejected: list[Rejected] = []
        contacts = plainfiles.read_contacts(
            self.folder / "contacts.csv",
            account_ids,
            rejected=rejected,
            written=plainfiles.read_written(written_file(self.folder, "contact")),
        )
        _report(rejected)
        yield Batch(records=contacts, cursor=digest, snapshot=True)

    def check_fields(self, specs: Sequence[FieldSpec]) -> list[FieldProblem]:
        """The output files are the agent's own: any field can be written."""
        return []

    def write(self, obj: ObjectKind, updates: Sequence[FieldUpdate]) -> list[WriteOutcome]:
        path = written_file(self.folder, obj)
        rows = plainfiles.read_written(path)
        columns = _columns(rows)
        for update in updates:
            row = rows.setdefault(update.record_id, {})
            for name, value in update.values.items():
                row[name] = _cell(value)
                if name not in columns:
                    columns.append(name)
        _atomic_write_csv(path, ["id", *columns], rows)
        return [WriteOutcome(record_id=u.record_id, ok=True) for u in updates]


class FilesSurveys:
    """Survey responses from the folder's ``responses.csv`` / ``responses.jsonl``."""

    name = "files"

    def __init__(self, folder: Path, as_of: datetime) -> None:
        self.folder = folder
        self.as_of = as_of

    def read_responses(self, cursor: str | None) -> Iterator[SurveyBatch]:
        digest = _digest(self.folder / "responses.csv", self.folder / "responses.jsonl")
        if cursor == digest:
            return
        responses, rejected = plainfiles.read_responses(self.folder, self.as_of)
        yield SurveyBatch(responses=responses, rejected=rejected, cursor=digest)


def _report(rejected: Sequence[Rejected]) -> None:
    """A CRM row the agent cannot use is logged with its place; the others go on."""
    for r in rejected:
        _log.warning("crm_row_rejected", source=r.source, position=r.position, reason=r.reason)


def _digest(*paths: Path) -> str:
    """A content hash over the files that exist: the cursor of a file source."""
    h = hashlib.sha256()
    for path in paths:
        h.update(path.name.encode())
        if path.is_file():
            h.update(path.read_bytes())
    return h.hexdigest()


def _columns(rows: dict[str, dict[str, str]]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows.values():
        seen.update(dict.fromkeys(row))
    return list(seen)


def _cell(value: FieldValue) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return ";".join(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _atomic_write_csv(path: Path, header: list[str], rows: dict[str, dict[str, str]]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(header)
            for rid in sorted(rows):
                writer.writerow([rid, *(rows[rid].get(c, "") for c in header[1:])])
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
