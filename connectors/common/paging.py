"""One paginator for every cursor-paged vendor API.

``paginate`` drives a ``fetch(cursor) -> (items, next_cursor)`` function until the
vendor says there is no next page, and refuses a cursor it has already seen (a vendor
bug that would otherwise loop forever).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

__all__ = ["RepeatedCursorError", "paginate"]

T = TypeVar("T")
C = TypeVar("C")


class RepeatedCursorError(RuntimeError):
    """The vendor returned a cursor it had returned before."""


def paginate(
    fetch: Callable[[C | None], tuple[Sequence[T], C | None]],
    start: C | None = None,
) -> Iterator[Sequence[T]]:
    """Yield one page of items at a time; stop when the next cursor is None."""
    seen: set[C] = set()
    cursor = start
    while True:
        items, nxt = fetch(cursor)
        yield items
        if nxt is None:
            return
        if nxt in seen or nxt == cursor:
            raise RepeatedCursorError(f"cursor {nxt!r} repeated; stopping to avoid a loop")
        seen.add(nxt)
        cursor = nxt
