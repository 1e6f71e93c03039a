"""Progress of long commands: a rich progress display on a terminal, log lines otherwise.

History backfills know their total (dates): a bar with the time remaining. CRM syncs
do not (a CRM pages until it has no more): records read per object and the rate.
Without a terminal (a pipe, a service's log) the same progress is log lines, every
date of a backfill and every ``every_pages`` pages of a sync.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

import structlog
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

__all__ = ["backfill_progress", "sync_progress"]

_log = structlog.get_logger(__name__)

#: A CRM sync without a terminal logs its progress every this many pages.
SYNC_LOG_EVERY_PAGES = 10


def on_terminal() -> bool:
    """Whether stderr (where progress goes) is a terminal."""
    return sys.stderr.isatty()


@contextmanager
def backfill_progress(total: int, done: int) -> Iterator[Callable[[datetime, int], None]]:
    """A progress bar on a terminal, one log line per date otherwise."""
    if on_terminal():
        bar = Progress(
            TextColumn("backfill {task.fields[at]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
        )
        with bar:
            task = bar.add_task("backfill", total=total, completed=done, at="")

            def tick(at: datetime, _rows: int) -> None:
                bar.update(task, advance=1, at=at.date().isoformat())

            yield tick
        return
    count = done

    def log(at: datetime, rows: int) -> None:
        nonlocal count
        count += 1
        _log.info("history_backfilled", at=at.isoformat(), done=count, total=total, rows=rows)

    yield log


def sync_progress(
    *, terminal: bool | None = None, every_pages: int = SYNC_LOG_EVERY_PAGES
) -> Callable[[str, int, int, bool], None]:
    """What a CRM sync tells after each page (``agent.sync.cycle.SyncProgress``):
    records read per object and their rate, live on a terminal, else a log line every
    ``every_pages`` pages and one when the object's read ends."""
    if terminal if terminal is not None else on_terminal():
        return _SyncBar()
    return _SyncLog(every_pages)


def _rate(records: int, started: float) -> float:
    return records / max(time.monotonic() - started, 1e-6)


class _SyncLog:
    def __init__(self, every_pages: int) -> None:
        self.every_pages = max(every_pages, 1)
        self.started: dict[str, float] = {}

    def __call__(self, obj: str, records: int, pages: int, done: bool) -> None:
        started = self.started.setdefault(obj, time.monotonic())
        if done:
            del self.started[obj]
        elif pages % self.every_pages:
            return
        _log.info(
            "crm_sync_progress",
            object=obj,
            records=records,
            pages=pages,
            per_second=round(_rate(records, started), 1),
            done=done,
        )


class _SyncBar:
    def __init__(self) -> None:
        self.bar: Progress | None = None
        self.started = 0.0

    def __call__(self, obj: str, records: int, pages: int, done: bool) -> None:
        if self.bar is None:
            self.bar = Progress(
                SpinnerColumn(),
                TextColumn("CRM sync {task.description}"),
                TextColumn("{task.completed:,.0f} records, {task.fields[pages]} pages"),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                console=Console(stderr=True),
            )
            self.bar.start()
            self.started = time.monotonic()
            self.task = self.bar.add_task(f"{obj}s", total=None, pages=0, rate="")
        rate = f"{_rate(records, self.started):,.0f} records/s"
        self.bar.update(self.task, completed=records, pages=pages, rate=rate)
        if done:
            self.bar.stop()
            self.bar = None
