"""The leadership contract shared by every database's primitive (see ``agent.state.leader``)."""

from __future__ import annotations

import hashlib
import threading
from abc import ABC, abstractmethod
from types import TracebackType

import structlog

from agent.state.dialect import agent_identity
from agent.state.errors import LeadershipError, StateError

__all__ = ["Leadership", "identity", "lock_key"]

log = structlog.get_logger("agent.state.leader")


class Leadership(ABC):
    """Who may do the agent's work now. One instance per agent process."""

    #: Whether a refused agent may wait for the leader to go away (PostgreSQL only).
    can_stand_by: bool = False

    def __init__(self, name: str) -> None:
        self.name = name

    @property
    @abstractmethod
    def resource(self) -> str:
        """What is locked, for messages (the database file, or the database URL)."""

    @abstractmethod
    def try_acquire(self) -> bool:
        """Become the leader if nobody is; never waits. True if this agent now leads."""

    @abstractmethod
    def is_leader(self) -> bool:
        """Whether this agent still leads (checks the lock is really still held)."""

    @abstractmethod
    def holder(self) -> str | None:
        """Who holds the leadership (pid, host), if anyone does."""

    @abstractmethod
    def release(self) -> None:
        """Give the leadership up (idempotent)."""

    def session_pid(self) -> int | None:
        """The database session holding the lock (PostgreSQL's backend pid), if any."""
        return None

    def terminate_holder(self, host: str, pid: int, lock_pid: int) -> bool:
        """End the sessions of the agent ``pid`` on ``host`` (a leader hung past its lease)
        when its lock session ``lock_pid`` still holds the lock; True if any was ended."""
        return False

    def end_sessions_of(self, host: str, pid: int) -> bool:
        """End every database session of the agent ``pid`` on ``host`` (a superseded
        leader's, whose open transactions may hold rows); True if any was ended."""
        return False

    def acquire(
        self,
        *,
        wait: bool = True,
        poll_seconds: float = 2.0,
        stop: threading.Event | None = None,
    ) -> bool:
        """Lead now, or stand by until the leader goes (when ``wait`` and supported).

        Raises ``LeadershipError`` when another agent leads and this one may not wait.
        Returns False only when ``stop`` is set while standing by.
        """
        if self.try_acquire():
            return True
        if not (wait and self.can_stand_by):
            raise LeadershipError(self.refusal())
        log.info("standing by", resource=self.resource, leader=self.holder())
        stop = stop or threading.Event()
        while not stop.wait(poll_seconds):
            try:
                if self.try_acquire():
                    return True
            except StateError as exc:
                log.warning("leadership check failed", resource=self.resource, error=str(exc))
        return False

    def refusal(self) -> str:
        """Why this agent may not start, and what to do."""
        holder = self.holder() or "another ax-agent"
        return f"{holder} already leads on {self.resource}; stop it or start this one as standby"

    def __enter__(self) -> Leadership:
        self.acquire(wait=False)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for ``name``."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def identity() -> str:
    return agent_identity()
