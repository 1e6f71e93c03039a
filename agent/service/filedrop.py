"""The survey file drop: a watched folder of CSV / JSON Lines exports, each processed once.

For each settled file (not hidden, not changed for ``settle_seconds``):

1. its SHA-256 names it; a content already ingested is only moved away;
2. its records are read with the same rules as every survey file (``agent.sources.ingest``);
3. rejected records are written to ``processed/<file>.rejected.csv`` (position, reason,
   the offending value);
4. the accepted responses and the file's hash are committed in one transaction;
5. the file is moved to ``processed/``.

A crash between any two steps is safe: before 4 the file is read again (the report is
rewritten the same), after 4 it is recognised by its hash and only moved. A file that
cannot be read at all (not UTF-8, broken CSV) goes to ``failed/`` with the reason
beside it, and nothing of it is stored.

A file whose processing fails for another reason (a bug, a value the database refuses)
does not hold up the others: the files after it go on, the failure is counted in a
hidden ``.attempts/`` file beside it, the job reports the error, and after
``max_tries`` failures the file goes to ``failed/`` with the last error as its reason.
A database that cannot be reached is not the file's fault and counts no try.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import structlog
from sqlalchemy.exc import InterfaceError, OperationalError

from agent.config.service import FileDropSettings
from agent.core.errors import KnownError
from agent.core.models import Rejected, Response
from agent.service.checkpoint import Checkpoints, Interrupted
from agent.service.telemetry import RESPONSES_RECEIVED
from agent.sources.plainfiles import CrmFormatError, read_response_file
from agent.state.store import StateStore

__all__ = ["SUFFIXES", "DropCounts", "DropFilesFailedError", "FileDrop"]

_log = structlog.get_logger(__name__)
#: Files the drop takes; anything else in the folder is left alone.
SUFFIXES = (".csv", ".jsonl", ".ndjson")
PROCESSED = "processed"
FAILED = "failed"
ATTEMPTS = ".attempts"
#: Failures that say nothing about the file: it is tried again, no try counted.
_NOT_THE_FILE: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    Interrupted,
    MemoryError,
)


@dataclass(slots=True)
class DropCounts:
    files: int = 0
    repeated_files: int = 0
    failed_files: int = 0
    accepted: int = 0
    repeated: int = 0
    conflicting: int = 0
    rejected: int = 0
    detractors: int = 0

    def as_counts(self) -> dict[str, int]:
        return {f"drop_{name}": getattr(self, name) for name in self.__slots__}


class DropFilesFailedError(KnownError):
    """Some files failed this scan (the others were processed); they are tried again.

    A known error: each file's own failure is logged (``drop_file_failed``) with its
    cause, and the job's failure carries no traceback.

    ``counts`` holds what the scan did all the same.
    """

    def __init__(self, message: str, counts: DropCounts) -> None:
        super().__init__(message)
        self.counts = counts.as_counts()
        self.drop_counts = counts


class FileDrop:
    """Ingests what lands in ``settings.path`` into the state store."""

    def __init__(
        self,
        settings: FileDropSettings,
        store: StateStore,
        *,
        wall: Callable[[], float] = time.time,
        on_stored: Callable[[Sequence[Response]], None] = lambda _added: None,
    ) -> None:
        if settings.path is None:
            raise ValueError("the file drop needs a folder (file_drop.path)")
        self.folder = settings.path
        self.source = settings.source
        self.settle_seconds = settings.settle_seconds
        self.max_tries = settings.max_tries
        self.store = store
        self._wall = wall
        #: Told of every response a file added (after its commit).
        self.on_stored = on_stored

    def scan(self, as_of: datetime, checkpoints: Checkpoints | None = None) -> DropCounts:
        """Process every settled file, oldest first; stop between files when asked."""
        counts = DropCounts()
        failures: list[str] = []
        for path in self.candidates():
            if checkpoints is not None:
                checkpoints.check()
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            try:
                self._one(path, digest, as_of, counts)
            except _NOT_THE_FILE:
                raise
            except Exception as exc:  # the file's own failure: counted, the others go on
                failure = self._failed_try(path, digest, exc, counts)
                if failure:
                    failures.append(failure)
            else:
                self._attempts(digest).unlink(missing_ok=True)
        if failures:
            raise DropFilesFailedError("; ".join(failures), counts)
        return counts

    def candidates(self) -> list[Path]:
        """Settled survey files in the folder, oldest first."""
        if not self.folder.is_dir():
            raise FileNotFoundError(f"file drop folder {self.folder} does not exist")
        now = self._wall()
        found = [
            p
            for p in self.folder.iterdir()
            if p.suffix.lower() in SUFFIXES
            and not p.name.startswith(".")
            and p.is_file()
            and now - p.stat().st_mtime >= self.settle_seconds
        ]
        return sorted(found, key=lambda p: (p.stat().st_mtime, p.name))

    def _attempts(self, digest: str) -> Path:
        return self.folder / ATTEMPTS / f"{digest}.txt"

    def _failed_try(self, path: Path, digest: str, exc: Exception, counts: DropCounts) -> str:
        """Count one failed try of ``path``; at ``max_tries`` move it to ``failed/``.

        Returns the error to report for this scan (empty once the file is set aside).
        """
        error = f"{type(exc).__name__}: {exc}"[:500]
        marker = self._attempts(digest)
        tries = _tries(marker) + 1
        if tries >= self.max_tries:
            self._fail(path, digest, f"could not be processed after {tries} tries: {error}", counts)
            marker.unlink(missing_ok=True)
            return ""
        _atomic_write(marker, f"{tries}\n{error}\n")
        _log.error(
            "drop_file_failed",
            file=path.name,
            attempt=tries,
            max_tries=self.max_tries,
            error=error,
        )
        return f"{path.name}: try {tries} of {self.max_tries} failed: {error}"

    def _one(self, path: Path, digest: str, as_of: datetime, counts: DropCounts) -> None:
        log = _log.bind(file=path.name, sha256=digest[:12])
        target = _destination(self.folder / PROCESSED, path.name, digest)
        if self.store.file_seen(digest):
            log.info("drop_file_already_ingested", moved_to=str(target))
            counts.repeated_files += 1
            _move(path, target)
            return
        try:
            responses, rejected = read_response_file(path, as_of)
        except (CrmFormatError, UnicodeDecodeError) as exc:
            self._fail(path, digest, str(exc), counts)
            return
        if rejected:
            _write_report(_report_path(target), rejected)
        stored = [replace(r, source=self.source) for r in responses]
        with self.store.transaction() as tx:
            result = tx.add_responses(stored)
            tx.mark_file(digest, path.name, len(result.added), len(rejected))
        _move(path, target)
        try:
            self.on_stored(result.added)
        except Exception as exc:  # stored and moved: the file is done, its answers kept
            log.warning("drop_stored_hook_failed", error=str(exc)[:200])
        self._count(counts, len(result.added), result.duplicates, len(result.conflicts), rejected)
        counts.detractors += sum(1 for r in result.added if r.score <= 6)
        log.info(
            "drop_file_ingested",
            accepted=len(result.added),
            repeated=result.duplicates,
            conflicting=len(result.conflicts),
            rejected=len(rejected),
            moved_to=str(target),
        )

    def _count(
        self,
        counts: DropCounts,
        added: int,
        repeated: int,
        conflicting: int,
        rejected: Sequence[Rejected],
    ) -> None:
        counts.files += 1
        counts.accepted += added
        counts.repeated += repeated
        counts.conflicting += conflicting
        counts.rejected += len(rejected)
        for outcome, n in (
            ("accepted", added),
            ("repeated", repeated),
            ("conflicting", conflicting),
            ("rejected", len(rejected)),
        ):
            if n:
                RESPONSES_RECEIVED.labels(channel="file_drop", outcome=outcome).inc(n)

    def _fail(self, path: Path, digest: str, reason: str, counts: DropCounts) -> None:
        target = _destination(self.folder / FAILED, path.name, digest)
        _atomic_write(target.with_name(target.name + ".error.txt"), reason + "\n")
        _move(path, target)
        counts.failed_files += 1
        _log.error("drop_file_unreadable", file=path.name, reason=reason, moved_to=str(target))


def _tries(marker: Path) -> int:
    try:
        return int(marker.read_text(encoding="utf-8").split("\n", 1)[0])
    except (OSError, ValueError):
        return 0


def _destination(folder: Path, name: str, digest: str) -> Path:
    """``folder/name``, or ``folder/<stem>.<hash><suffix>`` when another file took that name."""
    plain = folder / name
    if not plain.exists() or _same_content(plain, digest):
        return plain
    stem, suffix = os.path.splitext(name)
    return folder / f"{stem}.{digest[:12]}{suffix}"


def _same_content(path: Path, digest: str) -> bool:
    return hashlib.sha256(path.read_bytes()).hexdigest() == digest


def _report_path(target: Path) -> Path:
    return target.with_name(target.name + ".rejected.csv")


def _write_report(path: Path, rejected: Sequence[Rejected]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["source", "position", "reason", "value"])
    writer.writerows([r.source, r.position, r.reason, r.value] for r in rejected)
    _atomic_write(path, buffer.getvalue())


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _move(path: Path, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    os.replace(path, target)
