"""Alembic migrations, run from code: the scripts ship inside the package.

``upgrade`` brings a fresh SQLite file or an empty PostgreSQL schema to the newest
revision. On PostgreSQL it first takes a transaction-level advisory lock, so two
replicas starting together do not both create the tables; DDL is transactional on
both dialects, so a failed migration leaves the previous revision intact.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy import Connection, Engine, text

from agent.state.dialect import dialect_of
from agent.state.errors import StateError

__all__ = ["MIGRATIONS_DIR", "current_revision", "downgrade", "head_revision", "upgrade"]

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"

_MIGRATION_LOCK = int.from_bytes(
    hashlib.sha256(b"ax-agent:migrate").digest()[:8], "big", signed=True
)


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision this version of the agent knows."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    if head is None:  # pragma: no cover - the package always ships a revision
        raise StateError("no migration scripts found in the package")
    return head


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at; None for an empty database."""
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate the database to ``revision`` (the newest by default), in one transaction."""
    with engine.begin() as conn:
        if dialect_of(conn) == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})
        _check_known(conn)
        command.upgrade(_config(conn), revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Migrate the database back to ``revision`` (``base``: no tables), in one transaction."""
    with engine.begin() as conn:
        command.downgrade(_config(conn), revision)


def _check_known(conn: Connection) -> None:
    """Refuse a database migrated by a newer agent instead of failing obscurely."""
    current = MigrationContext.configure(conn).get_current_revision()
    if current is None:
        return
    scripts = ScriptDirectory.from_config(_config())
    try:
        scripts.get_revision(current)
    except CommandError:
        raise StateError(
            f"the state database is at revision {current}, which this version of ax-agent "
            f"does not know (newest known: {head_revision()}); upgrade ax-agent"
        ) from None
