"""Survey responses, stored once: idempotent on (source, response_id).

A response arrives again when a file is re-dropped, a webhook is retried or a cursor
is re-read inclusively. An exact repeat (same content hash) is ignored; the same key
with different content is a conflict, reported and not stored, so the first answer
stands (DOMAIN.md compares a repeat with the first row carrying that id).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from dataclasses import fields
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from agent.core.batching import chunked
from agent.core.models import Response, sort_as_stored
from agent.state import schema
from agent.state.codec import response_hash
from agent.state.dialect import bulk_write_bound, one_of, plain_rows, row_binder
from agent.state.ops_base import BATCH_ROWS, OpsBase
from agent.state.records import AddResult, ResponseConflict

__all__ = ["ResponseBatch", "ResponseOps"]

_Key = tuple[str, str]
#: A response's columns, in the order of ``Response``'s fields (rows are read positionally).
_CONTENT = tuple(f.name for f in fields(Response))


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
        NOTHING``, so a concurrent writer can never make it fail.
        """
        table = schema.responses
        bind = row_binder(self._conn, table)
        received = self._now()
        hashes = batch.hashes
        added: list[Response] = []
        for chunk in chunked(unique, BATCH_ROWS):
            stored = self._stored_hashes([_key(r) for r in chunk])
            for key, digest in stored.items():
                batch.compare(key, digest)
            new = [r for r in chunk if _key(r) not in stored]
            values = [bind(_row(r, hashes[_key(r)], received)) for r in new]
            bulk_write_bound(self._conn, table, values)
            added.extend(new)
        return added

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
        """Content hashes of the keys already stored (one indexed query per source)."""
        c = schema.responses.c
        by_source: dict[str, list[str]] = {}
        for source, response_id in keys:
            by_source.setdefault(source, []).append(response_id)
        found: dict[_Key, str] = {}
        for source, ids in by_source.items():
            stmt = select(c.response_id, c.content_hash).where(
                c.source == source, one_of(c.response_id, ids, self._dialect)
            )
            for row in self._conn.execute(stmt):
                found[(source, row.response_id)] = row.content_hash
        return found


class ResponseBatch:
    """One call's responses, de-duplicated in memory before touching the database."""

    def __init__(self, responses: Iterable[Response]) -> None:
        self.hashes: dict[_Key, str] = {}
        self.first: dict[_Key, Response] = {}
        self.duplicates = 0
        self.conflicts: list[ResponseConflict] = []
        self.unique: list[Response] = []
        for response in responses:
            self._take(response)

    def result(self, added: Sequence[Response]) -> AddResult:
        return AddResult(tuple(added), self.duplicates, tuple(self.conflicts))

    def compare(self, key: _Key, stored_hash: str) -> None:
        """A key the database had already: an exact repeat or a conflict."""
        if stored_hash == self.hashes[key]:
            self.duplicates += 1
        else:
            self.conflicts.append(ResponseConflict(self.first[key], stored_hash, self.hashes[key]))

    def _take(self, response: Response) -> None:
        key, digest = _key(response), response_hash(response)
        known = self.hashes.get(key)
        if known is None:
            self.hashes[key] = digest
            self.first[key] = response
            self.unique.append(response)
        elif known == digest:
            self.duplicates += 1
        else:
            self.conflicts.append(ResponseConflict(response, known, digest))


# A response from a stored row, its fields set through their slots: a frozen dataclass's
# ``__init__`` sets each through ``object.__setattr__``, which took twice the time for
# the million responses a full computation loads. The row's values are the store's,
# in ``_CONTENT`` order; a field added to ``Response`` fails the unpacking here.
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
) = (getattr(Response, name).__set__ for name in _CONTENT)


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


def _key(response: Response) -> _Key:
    return (response.source, response.response_id)


def _row(response: Response, digest: str, received: datetime) -> tuple[Any, ...]:
    """The response's row, in the table's column order."""
    return (
        response.source,
        response.response_id,
        digest,
        response.email,
        response.score,
        response.submitted_at,
        response.driver,
        response.comment,
        response.account_hint,
        response.loop_closed_at,
        received,
    )
