"""The settled state: an input version moved by triggers, and each CRM's settled cycle.

Every write to a table the cycle computes or decides from moves the one row of
``input_versions`` inside the writing transaction (a trigger per table and event), so
no code path can change an input without the version showing it. ``settled_cycles``
holds, per CRM, the last whole cycle that changed nothing: its fingerprint, its
``as_of``, the first instant at which the same inputs can give another cycle, and its
portfolio figures.

Revision 0006_settled (after 0005_tasks).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_settled"
down_revision = "0005_tasks"
branch_labels = None
depends_on = None

#: As ``agent.state.schema.VERSIONED`` when this revision was written (a migration
#: never imports the live schema: later revisions add their own tables).
_VERSIONED = (
    "crm_records",
    "responses",
    "written_values",
    "write_failures",
    "alert_outbox",
    "alert_state",
    "silences",
    "history_accounts",
    "history_heads",
    "survey_plan",
    "survey_plans",
    "crm_tasks",
)
_EVENTS = ("insert", "update", "delete")

_PG_FUNCTION = """
CREATE OR REPLACE FUNCTION ax_bump_input_version() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM ax_changed) THEN
        UPDATE input_versions SET version = version + 1 WHERE id = 1;
    END IF;
    RETURN NULL;
END
$$
"""


def _tz() -> sa.DateTime:
    # agent.state.schema.UtcDateTime stores into this column type on every dialect.
    return sa.DateTime(timezone=True)


def create_triggers(table: str) -> None:
    """Triggers moving the input version on every insert, update and delete of ``table``.

    PostgreSQL: once per statement that changed a row; SQLite: once per row.
    """
    postgres = op.get_bind().dialect.name == "postgresql"
    for event in _EVENTS:
        name = f"ax_version_{table}_{event}"
        if postgres:
            rows = "OLD" if event == "delete" else "NEW"
            op.execute(
                f"CREATE TRIGGER {name} AFTER {event.upper()} ON {table} "
                f"REFERENCING {rows} TABLE AS ax_changed "
                "FOR EACH STATEMENT EXECUTE FUNCTION ax_bump_input_version()"
            )
        else:
            op.execute(
                f"CREATE TRIGGER {name} AFTER {event.upper()} ON {table} "  # noqa: S608  # constant names
                "BEGIN UPDATE input_versions SET version = version + 1 WHERE id = 1; END"
            )


def drop_triggers(table: str) -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    for event in _EVENTS:
        name = f"ax_version_{table}_{event}"
        op.execute(f"DROP TRIGGER IF EXISTS {name}" + (f" ON {table}" if postgres else ""))


def upgrade() -> None:
    op.create_table(
        "input_versions",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_input_versions")),
    )
    op.execute("INSERT INTO input_versions (id, version) VALUES (1, 0)")
    op.create_table(
        "settled_cycles",
        sa.Column("crm", sa.String(length=32), nullable=False),
        sa.Column("fingerprint", sa.String(length=64), nullable=False),
        sa.Column("as_of", _tz(), nullable=False),
        sa.Column("horizon", _tz(), nullable=True),
        sa.Column("portfolio", sa.JSON(), nullable=False),
        sa.Column("settled_at", _tz(), nullable=False),
        sa.PrimaryKeyConstraint("crm", name=op.f("pk_settled_cycles")),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(_PG_FUNCTION)
    for table in _VERSIONED:
        create_triggers(table)


def downgrade() -> None:
    for table in _VERSIONED:
        drop_triggers(table)
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION IF EXISTS ax_bump_input_version()")
    op.drop_table("settled_cycles")
    op.drop_table("input_versions")
