"""Leadership: at most one agent works on a state database at a time.

- PostgreSQL: a session-level advisory lock (``pg_try_advisory_lock``) held on a
  dedicated connection that stays open. The lock lives exactly as long as that
  session: if the leader dies or its connection drops, the server releases it and a
  standby's next ``try_acquire`` wins. ``is_leader()`` is the keep-alive check: one
  round trip that confirms the session still holds the lock, and reports a lost
  connection as lost leadership.
- SQLite: an exclusive OS lock (``flock``) on ``<database>.lock`` beside the file,
  holding the owner's pid and host. A second agent on the same file is refused with a
  message naming the file and the holder; SQLite has no standby mode.
- In-memory SQLite: one process by definition, always the leader.

Call ``is_leader()`` before each unit of work and stop when it returns False.
"""

from __future__ import annotations

from sqlalchemy.engine import URL

from agent.state.dialect import normalise_url, sqlite_path
from agent.state.leader_base import Leadership
from agent.state.leader_file import FileLeadership, LocalLeadership
from agent.state.leader_pg import PostgresLeadership

__all__ = [
    "FileLeadership",
    "Leadership",
    "LocalLeadership",
    "PostgresLeadership",
    "leadership_for",
]


def leadership_for(url: str | URL, name: str = "ax-agent") -> Leadership:
    """The leadership primitive that fits the state database at ``url``."""
    parsed = normalise_url(url)
    if parsed.drivername.startswith("postgresql"):
        return PostgresLeadership(parsed, name)
    path = sqlite_path(parsed)
    return LocalLeadership(name) if path is None else FileLeadership(path, name)
