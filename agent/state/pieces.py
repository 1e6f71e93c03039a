"""Large writes committed in pieces: each piece a transaction of its own.

SQLite has one writer at a time: while a transaction writes 50,000 rows (seconds),
a webhook storing one answer waits for all of it. A cycle's large writes therefore
commit ``PIECE_ROWS`` rows per transaction, so anyone else waits for one piece at
most. That is safe only when each piece is complete on its own: a crash after
piece k leaves pieces 1..k committed, and the next run must converge to what one
uninterrupted write would have stored (no duplicate, nothing lost). Every caller
states how: what makes the write complete (a cursor, a completion marker) is
committed last, in a short transaction of its own, and a rerun writes only what is
still missing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from typing import TypeVar

from agent.core.batching import chunked
from agent.state.dialect import let_waiting_writers_in

__all__ = ["PIECE_ROWS", "commit_in_pieces"]

T = TypeVar("T")
C = TypeVar("C")

#: Rows per transaction of a large write: about 100 ms of SQLite's write lock for the
#: widest rows a cycle writes (history rows with their figures, CRM records, tasks).
PIECE_ROWS = 2000


def commit_in_pieces(
    begin: Callable[[], AbstractContextManager[C]],
    items: Iterable[T],
    write: Callable[[C, list[T]], object],
    *,
    size: int | None = None,
) -> int:
    """``write(tx, piece)`` for each piece of ``items`` (``size`` at a time, by default
    ``PIECE_ROWS``, read at the call) in a
    transaction of its own (``begin()``: committed when it returns, rolled back when
    it raises, which stops the write there); returns how many pieces committed.

    Between two pieces the writers of this process waiting for SQLite's write lock go
    first (``let_waiting_writers_in``)."""
    committed = 0
    for piece in chunked(items, PIECE_ROWS if size is None else size):
        if committed:
            let_waiting_writers_in()
        with begin() as tx:
            write(tx, piece)
        committed += 1
    return committed
