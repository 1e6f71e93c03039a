"""Survey responses, stored once: idempotent on (source, response_id).

A response arrives again when a file is re-dropped, a webhook is retried or a cursor
is re-read inclusively. An exact repeat (same content hash) is ignored; the same key
with different content is a conflict, reported and not stored, so the first answer
stands (DOMAIN.md compares a repeat with the first row carrying that id).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import fields
from datetime import datetime
from operator import attrgetter
from typing import Any

from sqlalchemy import func, select

from agent.core.batching import chunked
from agent.core.models import Response, slot_setters, sort_as_stored
from agent.state import schema
from agent.state.codec import response_hash
from agent.state.dialect import bulk_cache, bulk_write_bound, one_of, plain_rows, value_binder
from agent.state.ops_base import BATCH_ROWS, OpsBase
from agent.state.records import AddResult, ResponseConflict

__all__ = ["ResponseBatch", "ResponseOps"]

_Key = tuple[str, str]

#: A batch of at least this many answers is stored with SQLite's bulk page cache
#: (``bulk_cache``): a file's first read, not a webhook's answer.
BULK_ROWS = 10_000
#: A response's columns, in the order of ``Response``'s fields (rows are read positionally).
_CONTENT = tuple(f.name for f in fields(Response))
#: The responses table's columns, in the order ``store_batch`` builds a row; a column
#: added to the table stops the import here instead of shifting the values.
_COLUMNS = (
    "source",
    "response_id",
    "content_hash",
    "email",
    "score",
    "submitted_at",
    "driver",
    "comment",
    "account_hint",
    "loop_closed_at",
    "received_at",
)
if tuple(c.name for c in schema.responses.columns) != _COLUMNS:  # pragma: no cover - a guard
    raise TypeError("ResponseOps.store_batch builds rows of other columns than the table's")


class ResponseOps(OpsBase):
    """The responses table."""

    def add_responses(self, responses: Sequence[Response]) -> AddResult:
        """Store the new responses; count exact repeats; report conflicting repeats."""
        batch = ResponseBatch(responses)
        return batch.result(self.store_batch(batch.unique, batch))

    def store_batch(self, unique: Sequence[Response], batch: ResponseBatch) -> list[Response]:
        """Insert ``unique`` (distinct keys of ``batch``); returns those that were new.

        Keys the database had already are compared by content hash and counted on
        ``batch`` as repeats or conflicts. The insert still says ``ON CONFLICT DO
        NOTHING``, so a concurrent writer can never make it fail; the keys such a
        writer stored after they were looked up (PostgreSQL: two webhook requests with
        one answer) are compared in the same way, never reported as new.
        """
        added: list[Response] = []
        with bulk_cache(self._conn) if len(unique) >= BULK_ROWS else nullcontext():
            for chunk in chunked(unique, BATCH_ROWS):
                keys = [(r.source, r.response_id) for r in chunk]
                stored = self._stored_hashes(keys)
                for key, digest in stored.items():
                    batch.compare(key, digest)
                added.extend(r for r, key in zip(chunk, keys, strict=True) if key not in stored)
            raced = self._insert(_in_key_order(added), batch.hashes)
        if raced:
            for key, digest in self._stored_hashes(raced).items():
                batch.compare(key, digest)
            taken = set(raced)
            added = [r for r in added if (r.source, r.response_id) not in taken]
        return added

    def _insert(self, responses: Sequence[Response], hashes: Mapping[_Key, str]) -> list[_Key]:
        """Insert the rows of ``responses``, ``BATCH_ROWS`` to a statement; returns the
        keys a concurrent transaction wrote first (their rows are that one's).

        Given in primary-key order, the key index grows at its end: in the order of a
        file, whose response ids follow no order, each row lands on a random page of
        it, which made the insert of a million responses take half as long again.
        """
        table = schema.responses
        # both instants by one converter; ``received_at`` the same on every row, bound
        # once; a row built inline, in ``_COLUMNS`` order, with no call per row
        stamp = value_binder(self._conn, table.c.submitted_at)
        received = stamp(self._now())
        raced: list[_Key] = []
        for chunk in chunked(responses, BATCH_ROWS):
            values = [
                (
                    r.source,
                    r.response_id,
                    hashes[r.source, r.response_id],
                    r.email,
                    r.score,
                    stamp(r.submitted_at),
                    r.driver,
                    r.comment,
                    r.account_hint,
                    stamp(r.loop_closed_at),
                    received,
                )
                for r in chunk
            ]
            written = bulk_write_bound(self._conn, table, values, inserted=True)
            if written is not None:
                ours = {(source, response_id) for source, response_id in written}
                raced += [k for r in chunk if (k := (r.source, r.response_id)) not in ours]
        return raced

    def has_response(self, source: str, response_id: str) -> bool:
        c = schema.responses.c
        stmt = select(c.response_id).where(c.source == source, c.response_id == response_id)
        return self._conn.execute(stmt).first() is not None

    def load_responses(self, since: datetime | None = None) -> list[Response]:
        """Every stored response (submitted at or after ``since``), oldest first (then by
        source and id).

        Sorted here, not by the database: SQLite sorts a million wide rows through a
        temporary B-tree in several times the time Python takes for the same order."""
        c = schema.responses.c
        stmt = select(*(c[name] for name in _CONTENT))
        if since is not None:
            stmt = stmt.where(c.submitted_at >= since)
        responses = [_stored(*row) for row in plain_rows(self._conn, stmt)]
        sort_as_stored(responses)
        return responses

    def responses_by_key(self, keys: Iterable[_Key]) -> list[Response]:
        """The stored responses of ``keys`` ((source, response_id); those not stored are
        left out), in the order ``load_responses`` gives."""
        c = schema.responses.c
        by_source: dict[str, list[str]] = {}
        for source, response_id in keys:
            by_source.setdefault(source, []).append(response_id)
        found: list[Response] = []
        for source, ids in by_source.items():
            for batch in chunked(list(dict.fromkeys(ids)), BATCH_ROWS):
                stmt = select(*(c[name] for name in _CONTENT)).where(
                    c.source == source, one_of(c.response_id, batch, self._dialect)
                )
                found.extend(_stored(*row) for row in plain_rows(self._conn, stmt))
        sort_as_stored(found)
        return found

    def known_response_ids(self, source: str, ids: Iterable[str]) -> set[str]:
        """Which of ``ids`` the store holds for ``source``."""
        c = schema.responses.c
        found: set[str] = set()
        for batch in chunked(ids, BATCH_ROWS):
            stmt = select(c.response_id).where(
                c.source == source, one_of(c.response_id, batch, self._dialect)
            )
            found.update(self._conn.execute(stmt).scalars())
        return found

    def count_responses(self) -> int:
        return int(
            self._conn.execute(select(func.count()).select_from(schema.responses)).scalar_one()
        )

    def _stored_hashes(self, keys: Sequence[_Key]) -> dict[_Key, str]:
        """Content hashes of the keys already stored (one indexed query per source).

        On SQLite the query is written out, not built: SQLAlchemy's compiling of the
        thousands of ids took longer than the lookup itself (about 1 s of a
        million-response first ingest)."""
        c = schema.responses.c
        by_source: dict[str, list[str]] = {}
        for source, response_id in keys:
            by_source.setdefault(source, []).append(response_id)
        found: dict[_Key, str] = {}
        for source, ids in by_source.items():
            if self._dialect == "sqlite":
                marks = ",".join("?" * len(ids))
                sql = f"{_SQLITE_STORED} ({marks})"
                rows: Iterable[Sequence[Any]] = self._conn.exec_driver_sql(sql, (source, *ids))
            else:
                stmt = select(c.response_id, c.content_hash).where(
                    c.source == source, one_of(c.response_id, ids, self._dialect)
                )
                rows = self._conn.execute(stmt)
            for row in rows:
                found[source, row[0]] = row[1]
        return found


def _in_key_order(responses: Sequence[Response]) -> list[Response]:
    """``responses`` in primary-key order (source, then id), the order rows are inserted in.

    Two stable sorts on one text each, not one on a pair: Python compares text keys
    in a fast path of its own, which sorted a million ids in a seventh of the time,
    and the second sort is one pass when every response has the same source.
    """
    ordered = sorted(responses, key=_ID)
    ordered.sort(key=_SOURCE)
    return ordered


_ID = attrgetter("response_id")
_SOURCE = attrgetter("source")

#: ``_stored_hashes`` on SQLite, the ids' parameters to follow.
_SQLITE_STORED = (
    "SELECT response_id, content_hash FROM responses WHERE source = ? AND response_id IN"
)


class ResponseBatch:
    """One call's responses, de-duplicated in memory before touching the database."""

    def __init__(self, responses: Iterable[Response]) -> None:
        self.hashes: dict[_Key, str] = {}
        self.first: dict[_Key, Response] = {}
        self.duplicates = 0
        self.conflicts: list[ResponseConflict] = []
        self.unique: list[Response] = []
        # ``_take`` inline: once per response of a million-response first ingest
        hashes, first, unique = self.hashes, self.first, self.unique
        for response in responses:
            key = (response.source, response.response_id)
            digest = response_hash(response)
            known = hashes.get(key)
            if known is None:
                hashes[key] = digest
                first[key] = response
                unique.append(response)
            elif known == digest:
                self.duplicates += 1
            else:
                self.conflicts.append(ResponseConflict(response, known, digest))

    def result(self, added: Sequence[Response]) -> AddResult:
        return AddResult(tuple(added), self.duplicates, tuple(self.conflicts))

    def compare(self, key: _Key, stored_hash: str) -> None:
        """A key the database had already: an exact repeat or a conflict."""
        if stored_hash == self.hashes[key]:
            self.duplicates += 1
        else:
            self.conflicts.append(ResponseConflict(self.first[key], stored_hash, self.hashes[key]))


# A response from a stored row, its fields set through their slots (``slot_setters``): a
# frozen dataclass's ``__init__`` sets each through ``object.__setattr__``, which took
# twice the time for the million responses a full computation loads. The row's values
# are the store's, in ``_CONTENT`` order.
_new = object.__new__
(
    _set_id,
    _set_email,
    _set_score,
    _set_submitted,
    _set_driver,
    _set_comment,
    _set_hint,
    _set_closed,
    _set_source,
) = slot_setters(Response, _CONTENT)


def _stored(  # noqa: PLR0917  # one stored row, positionally
    response_id: str,
    email: str | None,
    score: int,
    submitted_at: datetime,
    driver: str | None,
    comment: str | None,
    account_hint: str | None,
    loop_closed_at: datetime | None,
    source: str,
) -> Response:
    # Text that repeats across a million answers is one shared string each: the source
    # and driver names, and the respondent's email, which a contact loaded with
    # ``contact_from_payload`` shares too (about 170 MB less at 1,000,000 answers).
    response: Response = _new(Response)
    _set_id(response, response_id)
    _set_email(response, email if email is None else _intern(email))
    _set_score(response, score)
    _set_submitted(response, submitted_at)
    _set_driver(response, driver if driver is None else _intern(driver))
    _set_comment(response, comment)
    _set_hint(response, account_hint if account_hint is None else _intern(account_hint))
    _set_closed(response, loop_closed_at)
    _set_source(response, _intern(source))
    return response


_intern = sys.intern
