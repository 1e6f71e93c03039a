"""Leadership on SQLite: an exclusive ``flock`` beside the database file."""

from __future__ import annotations

import fcntl
import json
import os
import socket
import threading
from datetime import UTC, datetime
from pathlib import Path

import structlog

from agent.state.leader_base import Leadership, identity

__all__ = ["FileLeadership", "LocalLeadership"]

log = structlog.get_logger("agent.state.leader")


class FileLeadership(Leadership):
    """An exclusive ``flock`` on ``<database>.lock``: one agent per SQLite file."""

    def __init__(self, database: Path, name: str = "ax-agent") -> None:
        super().__init__(name)
        self.database = database
        self.lock_path = database.with_name(database.name + ".lock")
        self._fd: int | None = None
        #: The scheduler thread (is_leader) and the stopping thread (release) may race to
        #: close the lock descriptor; closing it twice could close another file's.
        self._fd_lock = threading.Lock()

    @property
    def resource(self) -> str:
        return str(self.database)

    def try_acquire(self) -> bool:
        if self._fd is not None:
            return self.is_leader()
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        self._write_owner(fd)
        log.info("leadership acquired", resource=self.resource, lock=str(self.lock_path))
        return True

    def is_leader(self) -> bool:
        if self._fd is None:
            return False
        try:
            same = os.fstat(self._fd).st_ino == os.stat(self.lock_path).st_ino
        except FileNotFoundError:
            same = False
        if not same:  # the lock file was removed or replaced: another agent could lock it
            log.warning("leadership lost", resource=self.resource, reason="lock file replaced")
            self.release()
        return same

    def holder(self) -> str | None:
        if self._fd is None and not self._held_elsewhere():
            return None  # a pid left in the file by a killed agent is not a holder
        try:
            owner = json.loads(self.lock_path.read_text(encoding="utf-8") or "{}")
        except (OSError, ValueError):
            return None
        if not isinstance(owner, dict) or "pid" not in owner:
            return None
        host, since = owner.get("host", "?"), owner.get("since", "?")
        return f"ax-agent pid {owner['pid']} on {host} since {since}"

    def _held_elsewhere(self) -> bool:
        try:
            fd = os.open(self.lock_path, os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False
        finally:
            os.close(fd)

    def release(self) -> None:
        with self._fd_lock:
            fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)
        log.info("leadership released", resource=self.resource)

    def refusal(self) -> str:
        holder = self.holder() or "another ax-agent (pid not recorded yet)"
        return (
            f"the state database {self.database} is in use by {holder}: only one agent may "
            f"run on a SQLite state file (lock file {self.lock_path}). Stop that agent, or "
            "move the state to PostgreSQL (AX_STATE_URL=postgresql+psycopg://…) to run "
            "standby replicas."
        )

    @staticmethod
    def _write_owner(fd: int) -> None:
        owner = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(owner).encode(), 0)
        os.fsync(fd)


class LocalLeadership(Leadership):
    """In-memory SQLite: nothing to share, so this process always leads."""

    def __init__(self, name: str = "ax-agent") -> None:
        super().__init__(name)
        self._held = False

    @property
    def resource(self) -> str:
        return "in-memory state"

    def try_acquire(self) -> bool:
        self._held = True
        return True

    def is_leader(self) -> bool:
        return self._held

    def holder(self) -> str | None:
        return identity() if self._held else None

    def release(self) -> None:
        self._held = False
