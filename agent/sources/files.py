"""The plain-file CRM: a folder in DOMAIN.md's format, the embedded default.

Reads ``accounts.csv`` / ``contacts.csv`` (and survey responses) through
``agent.sources.plainfiles``; writes the agent's figures to ``ax_accounts.csv`` and
``ax_contacts.csv`` beside them, keyed by id and sorted by it, each rewrite atomic
(temporary file, then rename) so a crash leaves the old or the new file, never half of
one. A rewrite merges the batch into the file as it reads it (``FilesCrm.write``).

The written files are part of what the accounts' and contacts' cursors cover (a person
may type over a figure: it is read back and written again). The agent's own rewrite is
not such a change: ``cursor_after_write`` gives the cursor with the file as written, so
the next cycle does not read the whole folder again to find its own figures.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import chain
from pathlib import Path
from typing import Any

import structlog

from agent.core.compute import Excluded
from agent.core.contract import FieldSpec, ObjectKind
from agent.core.models import Account, Contact, Dropped, Rejected
from agent.core.ports import Batch, FieldProblem, FieldUpdate, FieldValue, SurveyBatch, WriteOutcome
from agent.sources import plainfiles
from agent.sources.csvrecords import UNTERMINATED_QUOTE as OPEN_QUOTE
from agent.sources.ingest import FUTURE_SUBMITTED_AT, parse_timestamp
from agent.sources.plainfiles import RESPONSES_CSV, RESPONSES_JSONL

__all__ = ["FilesCrm", "FilesSurveys", "written_file"]

_log = structlog.get_logger(__name__)
_WRITTEN = {"account": "ax_accounts.csv", "contact": "ax_contacts.csv"}
#: The CRM's own files each object's records are read from (with its written file).
_SOURCES: dict[ObjectKind, tuple[str, ...]] = {
    "account": ("accounts.csv",),
    "contact": ("contacts.csv", "accounts.csv"),
}
_KINDS: tuple[ObjectKind, ...] = ("account", "contact")


def written_file(folder: Path, obj: ObjectKind) -> Path:
    """Where the figures for ``obj`` are written in ``folder``."""
    return folder / _WRITTEN[obj]


class FilesCrm:
    """A CrmConnector over a folder. A changed source file is re-read whole; files that
    have not changed (same size and modification time, or else same content hash) are
    not read at all, so a quiet cycle costs a few ``stat`` calls."""

    name = "files"
    #: One write rewrites one file: the whole plan fits in one batch.
    max_write_batch = 1_000_000

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        #: What the last read of each file left out: its rejected rows, and its dropped
        #: rows with the rejected accounts (accounts.csv) or their contacts (contacts.csv).
        self._left: dict[ObjectKind, tuple[list[Rejected], Excluded]] = {}
        #: Per object, its written file's entry just before and just after the last
        #: ``write`` (``[size, mtime, hash]``, None: no file).
        self._wrote: dict[ObjectKind, tuple[_Entry, _Entry]] = {}
        #: The content hash of accounts.csv as this process last read it, and its
        #: accounts key (``_accounts_key``).
        self._key_read: tuple[str, str] | None = None

    @staticmethod
    def contents(cursor: str | None) -> object:
        """What a cursor says of its files' contents (their hashes, without sizes and
        times): the rows left out follow from it, a touched file does not change it."""
        files = _parse(cursor)
        if files is None:
            return cursor
        return sorted(
            (name, entry[2] if isinstance(entry, list) and len(entry) == 3 else entry)
            for name, entry in files.items()
            if name not in _WRITTEN.values()  # the agent's own figures leave no row out
        )

    def left_out(
        self, cursors: Mapping[ObjectKind, str | None] | None = None
    ) -> tuple[list[Rejected], Excluded]:
        """The CRM rows the agent cannot use (rejected) or does not use (dropped), as of
        the files last read: they belong in the metrics document like rejected answers.
        With them, the rejected accounts and their contacts: the responses these would
        match are unmatched as ``account_rejected``, as ``metrics`` on the folder says.

        For a file not read by this process (its cursor said unchanged), what its last
        read left out is taken from its stored cursor (``cursors``), which keeps it;
        a cursor of an older kind makes the file be read once. A file that cannot be
        read adds nothing (the CRM sync says why).
        """
        reads: tuple[tuple[ObjectKind, _Read], ...] = (
            ("account", self.read_accounts),
            ("contact", self.read_contacts),
        )
        for obj, read in reads:
            if obj in self._left:
                continue
            kept = _left_in((cursors or {}).get(obj))
            if kept is not None:
                self._left[obj] = kept
                continue
            try:
                for _ in read(None):
                    pass
            except (OSError, ValueError):
                continue
        rejected: list[Rejected] = []
        dropped: list[Dropped] = []
        for obj_rejected, obj_left in (self._left.get(k, ([], Excluded())) for k in _KINDS):
            rejected.extend(obj_rejected)
            dropped.extend(obj_left.dropped)
        accounts = self._left.get("account", ([], Excluded()))[1].accounts
        contacts = self._left.get("contact", ([], Excluded()))[1].contacts
        return rejected, Excluded(dropped, accounts, contacts)

    def _state(self, obj: ObjectKind) -> _FileState:
        """The files ``obj``'s records are read from, the written one last."""
        sources = (self.folder / name for name in _SOURCES[obj])
        return _FileState.of(*sources, written_file(self.folder, obj))

    def read_accounts(self, cursor: str | None) -> Iterator[Batch[Account]]:
        state = self._state("account")
        if state.unchanged(cursor):
            return
        if state.same_content(cursor):  # touched, not changed: remember the new times only
            yield Batch(records=[], cursor=_kept(state.cursor(), cursor), snapshot=False)
            return
        digest = state.cursor()
        rejected: list[Rejected] = []
        excluded = Excluded()
        accounts = plainfiles.read_accounts(
            self.folder / "accounts.csv",
            rejected=rejected,
            written=plainfiles.read_written(written_file(self.folder, "account")),
            excluded=excluded,
        )
        _report(rejected)
        self._left["account"] = (rejected, excluded)
        self._key_read = (state.hash_of("accounts.csv"), _accounts_key(accounts, excluded))
        kept = _keeping(digest, rejected, excluded)
        own = _own_values(state, cursor, "account")
        yield Batch(records=accounts, cursor=kept, snapshot=True, own_values=own)

    def read_contacts(self, cursor: str | None) -> Iterator[Batch[Contact]]:
        state = self._state("contact")
        if state.unchanged(cursor):
            return
        if state.same_content(cursor):
            yield Batch(records=[], cursor=_kept(state.cursor(), cursor), snapshot=False)
            return
        key = self._key_if_only_accounts_changed(state, cursor)
        if key is not None:  # the accounts the contacts rest on are the same: nothing to read
            yield Batch(records=[], cursor=_kept(state.cursor(), cursor, key), snapshot=False)
            return
        digest = state.cursor()
        accounts_left = Excluded()  # rejected accounts: their contacts are account_rejected
        accounts = plainfiles.read_accounts(self.folder / "accounts.csv", excluded=accounts_left)
        account_ids = {a.id for a in accounts}
        rejected: list[Rejected] = []
        excluded = Excluded(accounts=accounts_left.accounts)
        contacts = plainfiles.read_contacts(
            self.folder / "contacts.csv",
            account_ids,
            rejected=rejected,
            written=plainfiles.read_written(written_file(self.folder, "contact")),
            excluded=excluded,
            share_emails=True,  # kept in the cycle beside the stored answers
        )
        _report(rejected)
        self._left["contact"] = (rejected, excluded)
        kept = _keeping(digest, rejected, excluded, _accounts_key(accounts, accounts_left))
        own = _own_values(state, cursor, "contact")
        yield Batch(records=contacts, cursor=kept, snapshot=True, own_values=own)

    def _key_if_only_accounts_changed(self, state: _FileState, cursor: str | None) -> str | None:
        """The accounts key of ``accounts.csv`` as it is, when it is the one the contacts
        cursor holds and the contacts' own files are unchanged (None: read the contacts).

        Contacts rest on accounts.csv only through which accounts exist and which were
        rejected (their contacts are dropped as ``account_rejected``, their answers
        unmatched as such): a new revenue or name changes neither. The key comes from
        this process's read of the accounts when it read the same file, else from a
        read of accounts.csv (a fraction of reading the contacts)."""
        old, held = _parse(cursor), _accounts_key_in(cursor)
        if old is None or held is None or not state.others_unchanged(old, "accounts.csv"):
            return None
        digest = state.hash_of("accounts.csv")
        known = self._key_read
        if known is not None and known[0] == digest:
            key = known[1]
        else:
            left = Excluded()
            accounts = plainfiles.read_accounts(self.folder / "accounts.csv", excluded=left)
            key = _accounts_key(accounts, left)
        return key if key == held else None

    def check_fields(self, specs: Sequence[FieldSpec]) -> list[FieldProblem]:
        """The output files are the agent's own: any field can be written."""
        return []

    def write(self, obj: ObjectKind, updates: Sequence[FieldUpdate]) -> list[WriteOutcome]:
        """Merge ``updates`` into the written file: the file's rows with the batch's values
        over theirs, the batch's new records among them, all sorted by id.

        The file as the agent writes it is sorted by id, one row each: it is merged as it
        is read (``_merge_written``), so a write holds the batch, not the file as well
        (half a million contacts at the largest portfolios). A file a person reordered
        or gave a repeated id is merged in memory as before (a later row replaces an
        earlier one): the result is the same file either way.
        """
        path = written_file(self.folder, obj)
        before = _entry_of(path)
        after = _merge_written(path, updates)
        if after is None:
            after = _rewrite_written(path, updates)
        self._wrote[obj] = (before, after)
        return [WriteOutcome(record_id=u.record_id, ok=True) for u in updates]

    def cursor_after_write(self, obj: ObjectKind, cursor: str | None) -> str | None:
        """``cursor`` with the written file as this process last wrote it, when the
        cursor held that file as it was just before the write (so the mirror, overlaid
        with the confirmed writes, is that file now); None otherwise: the next read looks
        at the folder. The CRM's own files keep their entries: a change to one since the
        cursor was taken is still found by the next read.

        The new entry keeps the racy-time rule: a file written in the last seconds is
        recorded without its time, so a person's edit in the same clock tick is still
        found (by its hash, next time).
        """
        files = _parse(cursor)
        wrote = self._wrote.get(obj)
        if files is None or wrote is None:
            return None
        before, after = wrote
        name = _WRITTEN[obj]
        if not _same_file(files.get(name), before):
            return None
        files[name] = _trusted(after)  # the CRM's own files keep their entries
        return _kept(json.dumps({"files": files}, sort_keys=True), cursor)


class FilesSurveys:
    """Survey responses from the folder's ``responses.csv`` / ``responses.jsonl``.

    Answers are usually appended to ``responses.csv``. When the file only grew since the
    last read (its first bytes hash as the whole file did then, and that part ended with
    a whole record), only the appended records are read, numbered after the ones before,
    unless one of them repeats a response id of an earlier record: DOMAIN.md compares a
    repeat with the first record carrying its id, byte for byte, so then the whole file
    is read again. ``known`` tells which of some ids the store holds for a source (the
    earlier records' accepted ids); without it every change reads the whole file.
    """

    name = "files"

    def __init__(
        self,
        folder: Path,
        as_of: datetime,
        known: Callable[[str, Sequence[str]], Collection[str]] | None = None,
    ) -> None:
        self.folder = folder
        self.as_of = as_of
        self.known = known

    def read_responses(self, cursor: str | None) -> Iterator[SurveyBatch]:
        """The folder's responses when its files changed since ``cursor``.

        The cursor keeps the records the last read rejected, so an unchanged file still
        lists them (a page without responses): the document shows every rejected row of
        the files as they are, in every cycle and after a restart, not only in the cycle
        that read them. A record rejected for a future ``submitted_at`` that ``as_of``
        has reached since makes the file be read again: it is an answer now."""
        state = _FileState.of(self.folder / RESPONSES_CSV, self.folder / RESPONSES_JSONL)
        kept = _rejected_in(cursor)
        if not any(self._due(r) for r in kept):
            if state.unchanged(cursor):
                if kept:
                    yield SurveyBatch(responses=[], rejected=kept, cursor=cursor)
                return
            if state.same_content(cursor):
                touched = _with(state.cursor(), kept, _resume_in(cursor))
                yield SurveyBatch(responses=[], rejected=kept, cursor=touched)
                return
            appended = self._appended(state, cursor, kept)
            if appended is not None:
                yield appended
                return
        size = state.size(RESPONSES_CSV)
        digest = state.cursor()  # before reading: a change during the read is read next time
        responses, rejected, reader = plainfiles.read_responses_with_csv(self.folder, self.as_of)
        resume = None
        if (
            reader is not None
            and size is not None
            and state.size(RESPONSES_CSV, fresh=True) == size  # nothing appended meanwhile
            and state.ends_whole(RESPONSES_CSV, size)
        ):
            resume = _Resume(size, reader.position, reader.held_ids())
        yield SurveyBatch(
            responses=responses, rejected=rejected, cursor=_with(digest, rejected, resume)
        )

    def _appended(
        self, state: _FileState, cursor: str | None, kept: list[Rejected]
    ) -> SurveyBatch | None:
        """Only the records appended to ``responses.csv`` since ``cursor``, when that is
        exact (see the class); None: read the whole folder."""
        resume = _appended_since(state, cursor, kept) if self.known is not None else None
        size = state.size(RESPONSES_CSV)
        if resume is None or size is None or self.known is None:
            return None
        digest = state.cursor()
        path = self.folder / RESPONSES_CSV
        reader = plainfiles.read_appended_responses(path, self.as_of, resume.size, resume.records)
        ids = reader.seen_ids()
        if ids & resume.held or self.known(RESPONSES_CSV, list(ids)):
            return None  # an id of an earlier record again: compared in a whole read
        if state.size(RESPONSES_CSV, fresh=True) != size:
            return None  # appended to meanwhile: the whole read takes it all
        # in the order of a whole read: this file's records, then the other file's
        rejected = [r for r in kept if r.source == RESPONSES_CSV]
        rejected += [*reader.rejected, *(r for r in kept if r.source != RESPONSES_CSV)]
        after = None
        if state.ends_whole(RESPONSES_CSV, size):
            after = _Resume(size, reader.position, resume.held | reader.held_ids())
        return SurveyBatch(
            responses=reader.responses, rejected=rejected, cursor=_with(digest, rejected, after)
        )

    def _due(self, rejected: Rejected) -> bool:
        """Whether a record rejected as submitted in the future is due by now."""
        if rejected.reason != FUTURE_SUBMITTED_AT:
            return False
        submitted = parse_timestamp(rejected.value)
        return submitted is None or submitted <= self.as_of


@dataclass(frozen=True, slots=True)
class _Resume:
    """Where the last read of ``responses.csv`` ended: its size, how many records it
    read, and the ids whose first record was not accepted (the store does not hold them)."""

    size: int
    records: int
    held: set[str]


def _appended_since(state: _FileState, cursor: str | None, kept: list[Rejected]) -> _Resume | None:
    """Where the last read of ``responses.csv`` ended, when the file has only grown since
    (``responses.jsonl`` as it was, the part read then unchanged and ending with a whole
    record); None otherwise."""
    old, resume = _parse(cursor), _resume_in(cursor)
    size = state.size(RESPONSES_CSV)
    if old is None or resume is None or size is None or size <= resume.size:
        return None
    entry = old.get(RESPONSES_CSV)
    if (
        not isinstance(entry, list)
        or len(entry) != 3
        or _stat_of(old.get(RESPONSES_JSONL)) != state.stats[RESPONSES_JSONL]
    ):
        return None  # an older cursor, or the other file changed (or was touched) too
    last_cut = any(
        r.source == RESPONSES_CSV and r.position == resume.records and r.reason == OPEN_QUOTE
        for r in kept
    )  # the last record read was cut short: the appended text may close it
    if last_cut or state.prefix_hash(RESPONSES_CSV, resume.size) != entry[2]:
        return None
    return resume


def _with(cursor: str, rejected: Sequence[Rejected], resume: _Resume | None) -> str:
    """``cursor`` with the rejected records and the resume point kept in it."""
    kept = json.loads(cursor)
    if rejected:
        kept["rejected"] = _rejected_rows(rejected)
    if resume is not None:
        kept["resume"] = [resume.size, resume.records, sorted(resume.held)]
    return json.dumps(kept, sort_keys=True)


def _resume_in(cursor: str | None) -> _Resume | None:
    try:
        size, records, held = _kept_in(cursor)["resume"]
        return _Resume(int(size), int(records), {str(i) for i in held})
    except (ValueError, KeyError, TypeError):
        return None


def _report(rejected: Sequence[Rejected]) -> None:
    """A CRM row the agent cannot use is logged with its place; the others go on."""
    for r in rejected:
        _log.warning("crm_row_rejected", source=r.source, position=r.position, reason=r.reason)


def _own_values(state: _FileState, cursor: str | None, obj: ObjectKind) -> bool:
    """Whether the written file of ``obj`` is as ``cursor`` holds it: as last read, or
    as the agent's own last write left it (``cursor_after_write`` moved the cursor
    past it). The values the records get from it then differ from those the mirror
    holds only by the agent's confirmed writes (``Batch.own_values``); a person's edit
    of the file since, or a write whose cursor was not moved (a crash in between),
    makes them read as a change."""
    old = _parse(cursor)
    return old is not None and state.as_held(old, _WRITTEN[obj])


class _FileState:
    """The cursor of a file source: per file its size, modification time and content hash.

    ``unchanged``: every file has the size and time the cursor holds (nothing is read).
    ``same_content``: some time changed but every content hash is the same (a touch, a
    copy of the same file): only the hashes of the files whose times moved are computed.
    """

    def __init__(self, paths: tuple[Path, ...]) -> None:
        self.paths = paths
        self.stats: dict[str, tuple[int, int] | None] = {}
        for path in paths:
            try:
                info = path.stat()
            except FileNotFoundError:
                self.stats[path.name] = None
            else:
                self.stats[path.name] = (info.st_size, info.st_mtime_ns)
        self.hashes: dict[str, str] = {}

    @classmethod
    def of(cls, *paths: Path) -> _FileState:
        return cls(paths)

    def unchanged(self, cursor: str | None) -> bool:
        old = _parse(cursor)
        return old is not None and all(
            _stat_of(old.get(name)) == stat for name, stat in self.stats.items()
        )

    def same_content(self, cursor: str | None) -> bool:
        old = _parse(cursor)
        if old is None:
            return False
        for path in self.paths:
            before = old.get(path.name)
            if before is not None and (not isinstance(before, list) or len(before) != 3):
                return False
            if self.stats[path.name] is None or before is None:
                if self.stats[path.name] is not None or before is not None:
                    return False
                continue
            if _stat_of(before) == self.stats[path.name]:
                self.hashes[path.name] = str(before[2])
            elif self._hash(path) != before[2]:
                return False
        return True

    def cursor(self) -> str:
        """The entries to compare with next time (see ``_trusted``)."""
        files: dict[str, _Entry] = {}
        for path in self.paths:
            stat = self.stats[path.name]
            files[path.name] = None if stat is None else _trusted([*stat, self._hash(path)])
        return json.dumps({"files": files}, sort_keys=True)

    def size(self, name: str, *, fresh: bool = False) -> int | None:
        """The file's size as first seen (``fresh``: now); None: no such file."""
        if fresh:
            try:
                return next(p for p in self.paths if p.name == name).stat().st_size
            except FileNotFoundError:
                return None
        stat = self.stats[name]
        return None if stat is None else stat[0]

    def ends_whole(self, name: str, size: int) -> bool:
        """Whether the file's first ``size`` bytes end with a line break (a whole record,
        unless a quote is still open: the reader says so)."""
        if size <= 0:
            return False
        with next(p for p in self.paths if p.name == name).open("rb") as handle:
            handle.seek(size - 1)
            return handle.read(1) == b"\n"

    def prefix_hash(self, name: str, size: int) -> str:
        """The hash of the file's first ``size`` bytes; the whole file's hash is kept on
        the way (one pass) for the cursor."""
        digest = hashlib.sha256()
        prefix = None
        left = size
        with next(p for p in self.paths if p.name == name).open("rb") as handle:
            while left > 0 and (chunk := handle.read(min(1 << 20, left))):
                digest.update(chunk)
                left -= len(chunk)
            prefix = digest.hexdigest()
            while chunk := handle.read(1 << 20):
                digest.update(chunk)
        self.hashes[name] = digest.hexdigest()
        return prefix

    def hash_of(self, name: str) -> str:
        """The content hash of one of the files (computed once)."""
        return self._hash(next(p for p in self.paths if p.name == name))

    def others_unchanged(self, old: Mapping[str, object], skip: str) -> bool:
        """Whether every file but ``skip`` is as ``old`` (a cursor's entries) holds it."""
        return all(self.as_held(old, path.name) for path in self.paths if path.name != skip)

    def as_held(self, old: Mapping[str, object], name: str) -> bool:
        """Whether the file ``name`` is as ``old`` (a cursor's entries) holds it: the same
        size and time, or else the same content (or absent in both)."""
        before, stat = old.get(name), self.stats[name]
        if before is None or stat is None:
            return before is None and stat is None
        if not isinstance(before, list) or len(before) != 3:
            return False
        path = next(p for p in self.paths if p.name == name)
        return _stat_of(before) == stat or self._hash(path) == before[2]

    def _hash(self, path: Path) -> str:
        known = self.hashes.get(path.name)
        if known is None:
            known = self.hashes[path.name] = _sha256(path)
        return known


#: A file modified less than this long ago is compared by content next time.
_RACY_NS = 2_000_000_000

_Read = Callable[[str | None], Iterator[Batch[Any]]]

#: A file's entry in a cursor: ``[size, mtime_ns, sha256]``, or None for no file.
_Entry = list[object] | None


def _trusted(entry: _Entry) -> _Entry:
    """``entry`` as a cursor keeps it. A file modified in the last seconds may change
    again within the same clock tick, keeping size and time: its time is not trusted
    (recorded as -1), so next time its hash decides."""
    if entry is None:
        return None
    size, mtime, digest = entry
    recent = time.time_ns() - _RACY_NS
    return [size, mtime if isinstance(mtime, int) and mtime < recent else -1, digest]


def _entry_of(path: Path) -> _Entry:
    """The file's exact entry now (its time as it is), None when there is no file."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return None
    return [info.st_size, info.st_mtime_ns, _sha256(path)]


def _same_file(kept: object, actual: _Entry) -> bool:
    """Whether a cursor's entry ``kept`` names the file ``actual`` describes: the same
    size and time, or else the same content."""
    if kept is None or actual is None:
        return kept is None and actual is None
    if not isinstance(kept, list) or len(kept) != 3:
        return False
    return _stat_of(kept) == (actual[0], actual[1]) or kept[2] == actual[2]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def _accounts_key(accounts: Sequence[Account], excluded: Excluded) -> str:
    """What the contacts' read takes from ``accounts.csv``: which accounts exist, and the
    rejected accounts as they are (their contacts and answers are reported against them)."""
    digest = hashlib.sha256()
    for account_id in sorted(a.id for a in accounts):
        digest.update(account_id.encode("utf-8", "surrogatepass") + b"\0")
    digest.update(b"\1")
    for account in excluded.accounts:
        row = _account_row(account)[:-1]  # not its figures: the written file is not read here
        digest.update(json.dumps(row, default=str).encode() + b"\0")
    return digest.hexdigest()


def _keeping(
    cursor: str, rejected: Sequence[Rejected], excluded: Excluded, key: str | None = None
) -> str:
    """``cursor`` keeping what its read left out (and, for the contacts, the accounts key)."""
    kept = json.loads(cursor)
    kept["left"] = {
        "rejected": _rejected_rows(rejected),
        "dropped": [[d.source, d.position, d.reason] for d in excluded.dropped],
        "accounts": [_account_row(a) for a in excluded.accounts],
        "contacts": [_contact_row(c) for c in excluded.contacts],
    }
    if key is not None:
        kept["accounts_key"] = key
    return json.dumps(kept, sort_keys=True)


def _kept(cursor: str, old: str | None, key: str | None = None) -> str:
    """``cursor`` (new file entries) with what ``old`` kept beside its entries."""
    before = _kept_in(old)
    kept = json.loads(cursor)
    for name in ("left", "accounts_key"):
        if name in before:
            kept[name] = before[name]
    if key is not None:
        kept["accounts_key"] = key
    return json.dumps(kept, sort_keys=True)


def _left_in(cursor: str | None) -> tuple[list[Rejected], Excluded] | None:
    """What a read left out, as its cursor keeps it (None: a cursor of an older kind)."""
    try:
        left = _kept_in(cursor)["left"]
        rejected = _rejected_of(left["rejected"])
        excluded = Excluded(
            dropped=[Dropped(str(s), int(p), str(r)) for s, p, r in left["dropped"]],
            accounts=[_account_of(row) for row in left["accounts"]],
            contacts=[_contact_of(row) for row in left["contacts"]],
        )
    except (ValueError, KeyError, TypeError):
        return None
    return rejected, excluded


def _accounts_key_in(cursor: str | None) -> str | None:
    key = _kept_in(cursor).get("accounts_key")
    return key if isinstance(key, str) else None


def _account_row(a: Account) -> list[object]:
    return [
        a.id,
        a.name,
        list(a.domains),
        a.revenue,
        a.revenue_potential,
        a.owner_email,
        dict(a.attributes),
        {k: str(v) for k, v in a.crm_values.items()},
    ]


def _account_of(row: list[Any]) -> Account:
    rid, name, domains, revenue, potential, owner, attributes, values = row
    return Account(rid, name, tuple(domains), revenue, potential, owner, attributes, values)


def _contact_row(c: Contact) -> list[object]:
    values = {k: str(v) for k, v in c.crm_values.items()}
    return [c.id, c.account_id, c.email, c.name, c.title, c.crm_tier, values]


def _contact_of(row: list[Any]) -> Contact:
    rid, account_id, email, name, title, tier, values = row
    return Contact(rid, account_id, email, name, title, tier, values)


def _parse(cursor: str | None) -> dict[str, list[object] | None] | None:
    """The per-file entries of a cursor; ``None`` for none or an older kind of cursor."""
    files = _kept_in(cursor).get("files")
    return files if isinstance(files, dict) else None


def _rejected_in(cursor: str | None) -> list[Rejected]:
    """The rejected records a cursor keeps (none for an older kind of cursor)."""
    try:
        return _rejected_of(_kept_in(cursor).get("rejected", []))
    except (ValueError, TypeError):
        return []


def _kept_in(cursor: str | None) -> dict[str, Any]:
    """Everything a cursor holds, as a mapping (empty for none or an older kind)."""
    if not cursor or not cursor.startswith("{"):
        return {}
    try:
        kept = json.loads(cursor)
    except ValueError:
        return {}
    return kept if isinstance(kept, dict) else {}


def _rejected_rows(rejected: Sequence[Rejected]) -> list[list[object]]:
    return [[r.source, r.position, r.reason, r.value] for r in rejected]


def _rejected_of(rows: Sequence[Sequence[Any]]) -> list[Rejected]:
    return [Rejected(str(s), int(p), str(r), str(v)) for s, p, r, v in rows]


def _stat_of(entry: list[object] | None) -> tuple[int, int] | None:
    if not isinstance(entry, list) or len(entry) != 3:
        return None
    size, mtime = entry[0], entry[1]
    if isinstance(size, int) and isinstance(mtime, int):
        return (size, mtime)
    return None


def _rewrite_written(path: Path, updates: Sequence[FieldUpdate]) -> _Entry:
    """The write of a file that is not sorted by id or repeats one (a person edited it):
    the whole file as a mapping (a later row replaces an earlier one), the batch over it.
    """
    rows = plainfiles.read_written(path)
    columns = _columns(rows)
    for update in updates:
        row = rows.setdefault(update.record_id, {})
        for name, value in update.values.items():
            row[name] = _cell(value)
            if name not in columns:
                columns.append(name)
    lines = ([rid, *(rows[rid].get(c, "") for c in columns)] for rid in sorted(rows))
    return _atomic_write_csv(path, chain([["id", *columns]], lines))


class _UnsortedFileError(Exception):
    """The written file is not sorted by id with one row each: it cannot be merged as read."""


def _merge_written(path: Path, updates: Sequence[FieldUpdate]) -> _Entry | None:
    """The write of ``updates`` merged with the file as it is read; None (and the file
    untouched) when the file turns out not to be sorted by id with one row per id.

    Writes what ``_rewrite_written`` writes for a sorted file: the header is the file's
    columns (when it has a row with an id) then the batch's new field names in the
    order first met; each row is the file's, with the batch's values over its own (a
    record's updates applied in the batch's order), the batch's other records in their
    places. Only the batch is held: the file passes through one row at a time.
    """
    batch = sorted(updates, key=_record_id)  # stable: a record's updates keep their order
    rows = plainfiles.WrittenRows(path)
    try:
        written = _atomic_write_csv(path, _merged(path, rows, batch, updates))
    except _UnsortedFileError:
        return None  # read again whole, which logs the records it skips
    except BaseException:
        rows.log_skipped()
        raise
    rows.log_skipped()
    return written


def _merged(
    path: Path,
    rows: plainfiles.WrittenRows,
    batch: Sequence[FieldUpdate],
    updates: Sequence[FieldUpdate],
) -> Iterator[list[str]]:
    """The header, then the rows of ``_merge_written`` in id order; raises
    ``_UnsortedFileError`` at the first file row whose id is not above the one before."""
    records = iter(rows)
    first = next(records, None)
    # a file without a row with an id keeps none of its columns (nor does the mapping)
    columns = [] if first is None else list(rows.columns)
    width = len(columns)
    for name in dict.fromkeys(name for update in updates for name in update.values):
        if name not in columns:
            columns.append(name)
    fill = [""] * (len(columns) - width)  # the file's rows have no value for the new ones
    place = {name: i for i, name in enumerate(columns, 1)}
    yield ["id", *columns]
    at, end = 0, len(batch)
    last = None
    for record_id, values in records if first is None else chain([first], records):
        if last is not None and record_id <= last:
            _log.info(
                "crm_file.written_merged_in_memory",
                file=path.name,
                record_id=record_id,
                after=last,
            )
            raise _UnsortedFileError(record_id)
        last = record_id
        while at < end and batch[at].record_id < record_id:  # new records before this one
            row = [batch[at].record_id, *[""] * len(columns)]
            at = _applied(row, batch, at, place)
            yield row
        row = [record_id, *values, *fill]
        if at < end and batch[at].record_id == record_id:
            at = _applied(row, batch, at, place)
        yield row
    while at < end:
        row = [batch[at].record_id, *[""] * len(columns)]
        at = _applied(row, batch, at, place)
        yield row


def _applied(
    row: list[str], batch: Sequence[FieldUpdate], at: int, place: Mapping[str, int]
) -> int:
    """Set ``row``'s cells from the updates of ``batch[at]``'s record, in order; returns
    where the next record's updates begin."""
    record_id, end = batch[at].record_id, len(batch)
    while at < end and batch[at].record_id == record_id:
        for name, value in batch[at].values.items():
            row[place[name]] = _cell(value)
        at += 1
    return at


def _record_id(update: FieldUpdate) -> str:
    return update.record_id


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


def _atomic_write_csv(path: Path, rows: Iterable[list[str]]) -> _Entry:
    """Write ``rows`` (the header first) to a new file, then rename it over ``path``;
    returns the entry of the file as written (taken before the rename: what a person
    writes after it differs). Whatever stops the rows (an error, a crash) leaves
    ``path`` as it was."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerows(rows)
            handle.flush()
            os.fsync(handle.fileno())
        written = _entry_of(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return written
