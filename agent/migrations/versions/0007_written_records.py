"""The write record per CRM record, not per field.

``written_values`` held one row per (record, field): millions of rows once a large
portfolio is written, each inserted and joined on its own. It now holds one row per
(crm, object, record_id): ``fields`` maps each field to ``[value, written at]`` (the
instant as fixed-width UTC text, ``2024-05-01T09:30:00.000000Z``, so stamps compare as
text) and ``written_at`` is the newest of them. The rows are converted in SQL, in the
migration's one transaction; the table is rebuilt, so its input-version triggers are
dropped with the old table and created on the new one (as 0006 made them).

Revision 0007_written_records (after 0006_settled).
"""

from __future__ import annotations

from types import ModuleType

import sqlalchemy as sa
from alembic import context, op
from alembic.script import ScriptDirectory

revision = "0007_written_records"
down_revision = "0006_settled"
branch_labels = None
depends_on = None

_TABLE = "written_values"
_OLD = "written_values_old"

#: Per dialect: the per-field rows of ``written_values_old`` as one row per record.
_TO_RECORDS = {
    "sqlite": """
        INSERT INTO written_values (crm, object, record_id, fields, written_at)
        SELECT crm, object, record_id,
               json_group_object(field, json_array(json(value),
                                 replace(written_at, ' ', 'T') || 'Z')),
               max(written_at)
        FROM written_values_old GROUP BY crm, object, record_id
    """,
    "postgresql": """
        INSERT INTO written_values (crm, object, record_id, fields, written_at)
        SELECT crm, object, record_id,
               json_object_agg(field, json_build_array(value,
                   to_char(written_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))),
               max(written_at)
        FROM written_values_old GROUP BY crm, object, record_id
    """,
}

#: Per dialect: the records of ``written_values_old`` back as one row per field.
_TO_FIELDS = {
    "sqlite": """
        INSERT INTO written_values (crm, object, record_id, field, value, written_at)
        SELECT crm, object, record_id, f.key, f.value -> '$[0]',
               replace(replace(f.value ->> '$[1]', 'T', ' '), 'Z', '')
        FROM written_values_old, json_each(written_values_old.fields) AS f
    """,
    "postgresql": """
        INSERT INTO written_values (crm, object, record_id, field, value, written_at)
        SELECT crm, object, record_id, f.key, f.value -> 0, (f.value ->> 1)::timestamptz
        FROM written_values_old, json_each(written_values_old.fields) AS f
    """,
}


def _tz() -> sa.DateTime:
    # agent.state.schema.UtcDateTime stores into this column type on every dialect.
    return sa.DateTime(timezone=True)


def _settled() -> ModuleType:
    """Revision 0006, whose trigger helpers give every versioned table its triggers."""
    script = ScriptDirectory.from_config(context.config).get_revision("0006_settled")
    if script is None:  # pragma: no cover - revision 0006 ships with this one
        raise RuntimeError("revision 0006_settled is missing")
    return script.module


def _set_aside() -> str:
    """Rename the table out of the way (its key's name too: PostgreSQL names are
    per schema) without its triggers; returns the dialect's name."""
    dialect = op.get_bind().dialect.name
    _settled().drop_triggers(_TABLE)
    op.rename_table(_TABLE, _OLD)
    if dialect == "postgresql":
        op.execute(f"ALTER TABLE {_OLD} RENAME CONSTRAINT pk_{_TABLE} TO pk_{_OLD}")
    return dialect


def _finish() -> None:
    op.drop_table(_OLD)
    _settled().create_triggers(_TABLE)


def _create(*columns: sa.Column[object], key: tuple[str, ...] = ()) -> None:
    """The table keyed by ``crm``, ``object``, ``record_id`` and ``key``."""
    op.create_table(
        _TABLE,
        sa.Column("crm", sa.String(length=32), nullable=False),
        sa.Column("object", sa.String(length=16), nullable=False),
        sa.Column("record_id", sa.String(length=255), nullable=False),
        *columns,
        sa.Column("written_at", _tz(), nullable=False),
        sa.PrimaryKeyConstraint("crm", "object", "record_id", *key, name=op.f(f"pk_{_TABLE}")),
    )


def upgrade() -> None:
    dialect = _set_aside()
    _create(sa.Column("fields", sa.JSON(), nullable=False))
    op.execute(_TO_RECORDS[dialect])
    _finish()


def downgrade() -> None:
    dialect = _set_aside()
    _create(
        sa.Column("field", sa.String(length=255), nullable=False),
        sa.Column("value", sa.JSON(), nullable=True),
        key=("field",),
    )
    op.execute(_TO_FIELDS[dialect])
    _finish()
