"""The input version moved by the writing statement itself, for the bulk tables on SQLite.

Every write to an input of the cycle moves ``input_versions`` inside the writing
transaction (``agent.state.schema.VERSIONED``). Database triggers do that, and on
PostgreSQL they run once per statement. SQLite runs a trigger once per row, and a
first cycle at 50,000 accounts writes more than two million rows to the three tables in
``schema.VERSIONED_BY_STATEMENT`` (answers, mirror records, the write record). Inserting
1,000,000 rows into the ``responses`` table took 5.1-6.5 s with its trigger and
4.3-5.7 s without (four runs each, on one machine; in a bare table of seven columns,
8.6 s against 2.9 s).

On SQLite those three tables have no trigger. Each statement that writes one of them
through an engine made by ``agent.state.dialect`` moves the version once, right after
it ran, on the same connection and so in the same transaction, when it changed at least
one row (an insert that met only existing keys changed none). A statement that fails
moves nothing, and the store rolls its transaction back (no code of the agent goes on
writing after a failed statement on SQLite). A write to these tables from outside
the agent (a person's SQL console, a migration that rewrites their rows) moves no
version on SQLite: such a migration moves it itself.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import Connection, Engine, event

from agent.state.schema import VERSIONED_BY_STATEMENT

__all__ = ["MOVE_VERSION", "move_version_by_statement", "written_table"]

#: The statement that moves the version (the triggers run the same one per row).
MOVE_VERSION = "UPDATE input_versions SET version = version + 1 WHERE id = 1"

#: The table a writing statement writes: its first INSERT, REPLACE, UPDATE or DELETE
#: target (after a leading WITH, if any).
_WRITES = re.compile(
    r"""\b(?:INSERT(?:\s+OR\s+\w+)?\s+INTO|REPLACE\s+INTO|UPDATE(?:\s+OR\s+\w+)?|DELETE\s+FROM)
        \s+["`\[]?(\w+)""",
    re.IGNORECASE | re.VERBOSE,
)
_LEADS = re.compile(r"\s*(?:INSERT|REPLACE|UPDATE|DELETE|WITH)\b", re.IGNORECASE)
_TABLES = frozenset(VERSIONED_BY_STATEMENT)


def written_table(statement: str) -> str | None:
    """The table ``statement`` writes (lower case), None for any other statement."""
    if _LEADS.match(statement) is None:
        return None
    found = _WRITES.search(statement)
    return None if found is None else found.group(1).lower()


def move_version_by_statement(engine: Engine) -> None:
    """Make every statement on ``engine`` (SQLite) that changes rows of a table in
    ``VERSIONED_BY_STATEMENT`` move the input version in its own transaction."""
    event.listen(engine, "after_cursor_execute", _after_statement)


def _after_statement(  # noqa: PLR0917  # SQLAlchemy's event signature
    conn: Connection,
    cursor: Any,
    statement: str,
    parameters: object,
    context: object,
    executemany: bool,
) -> None:
    if written_table(statement) not in _TABLES or cursor.rowcount == 0:
        return  # rowcount -1 (not known): moved, to be safe
    cursor.connection.execute(MOVE_VERSION)
