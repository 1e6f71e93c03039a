"""Bounded batches: the one place sequences are cut into vendor-sized pieces."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import TypeVar

__all__ = ["chunked"]

T = TypeVar("T")


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Full batches of ``size`` (the last may be shorter); never an empty batch."""
    if size <= 0:
        raise ValueError("batch size must be positive")
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch
