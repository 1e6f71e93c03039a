"""What every repository mixin of a transaction shares: its connection and dialect."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from sqlalchemy import Connection

from agent.state.dialect import Dialect

if TYPE_CHECKING:
    from agent.state.leader_epoch import Fence

__all__ = ["BATCH_ROWS", "OpsBase"]

#: Rows per INSERT batch: large enough to amortise round trips, small enough to
#: stay under PostgreSQL's 65,535 bind parameters for the widest table.
BATCH_ROWS = 5000


class OpsBase:
    """A unit of work on one connection inside one open transaction."""

    def __init__(self, conn: Connection, dialect: Dialect, fence: Fence | None = None) -> None:
        self._conn = conn
        self._dialect = dialect
        #: The leader's fence: a cursor commit or a write record is claimed against it.
        self._fence = fence

    def _hold(self, what: str) -> None:
        """Claim the leadership for ``what`` within this transaction (when fenced)."""
        if self._fence is not None:
            self._fence.hold(self._conn, what)

    @property
    def connection(self) -> Connection:
        """The SQLAlchemy connection, for repositories that use the tables directly."""
        return self._conn

    @staticmethod
    def _now() -> datetime:
        return datetime.now(UTC)
