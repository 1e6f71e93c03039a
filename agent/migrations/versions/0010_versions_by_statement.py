"""On SQLite, the bulk tables move the input version per statement, not per row.

SQLite runs a trigger once per row: the triggers that move ``input_versions`` on
``crm_records``, ``responses`` and ``written_values`` ran more than two million times
in a first cycle at 50,000 accounts. On SQLite these three lose their triggers; the
agent's engine moves the version once per writing statement instead, in the same
transaction (``agent.state.versioning``). PostgreSQL keeps its triggers, which run once per
statement. The version itself is left as it is.

Revision 0010_versions_by_statement (after 0009_written_settled).
"""

from __future__ import annotations

from alembic import op

revision = "0010_versions_by_statement"
down_revision = "0009_written_settled"
branch_labels = None
depends_on = None

#: As ``agent.state.schema.VERSIONED_BY_STATEMENT`` when this revision was written.
_TABLES = ("crm_records", "responses", "written_values")
_EVENTS = ("insert", "update", "delete")


def upgrade() -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in _TABLES:
        for event in _EVENTS:
            op.execute(f"DROP TRIGGER IF EXISTS ax_version_{table}_{event}")


def downgrade() -> None:
    """Revision 0006's triggers on SQLite, one run per row."""
    if op.get_bind().dialect.name != "sqlite":
        return
    for table in _TABLES:
        for event in _EVENTS:
            op.execute(
                f"CREATE TRIGGER ax_version_{table}_{event} AFTER {event.upper()} ON {table} "  # noqa: S608  # constant names
                "BEGIN UPDATE input_versions SET version = version + 1 WHERE id = 1; END"
            )
