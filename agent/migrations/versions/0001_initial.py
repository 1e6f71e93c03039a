"""The initial state schema: cycles, cursors, CRM mirror, responses, write-back, alerts.

Revision 0001 (first).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _tz() -> sa.DateTime:
    # agent.state.schema.UtcDateTime stores into this column type on every dialect.
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "cycles",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("job", sa.String(length=64), nullable=False),
        sa.Column("started_at", _tz(), nullable=False),
        sa.Column("finished_at", _tz(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("counts", sa.JSON(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cycles")),
    )
    op.create_index(op.f("ix_cycles_job_started_at"), "cycles", ["job", "started_at"])
    op.create_table(
        "cursors",
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("stream", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("updated_at", _tz(), nullable=False),
        sa.PrimaryKeyConstraint("source", "stream", name=op.f("pk_cursors")),
    )
    op.create_table(
        "crm_records",
        sa.Column("crm", sa.String(length=32), nullable=False),
        sa.Column("object", sa.String(length=16), nullable=False),
        sa.Column("record_id", sa.String(length=255), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        sa.Column("seen_at", _tz(), nullable=False),
        sa.PrimaryKeyConstraint("crm", "object", "record_id", name=op.f("pk_crm_records")),
    )
    op.create_table(
        "responses",
        sa.Column("source", sa.String(length=255), nullable=False),
        sa.Column("response_id", sa.String(length=255), nullable=False),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("submitted_at", _tz(), nullable=False),
        sa.Column("driver", sa.String(length=255), nullable=True),
        sa.Column("comment", sa.Text(), nullable=True),
        sa.Column("account_hint", sa.String(length=255), nullable=True),
        sa.Column("loop_closed_at", _tz(), nullable=True),
        sa.Column("received_at", _tz(), nullable=False),
        sa.PrimaryKeyConstraint("source", "response_id", name=op.f("pk_responses")),
    )
    op.create_index(op.f("ix_responses_submitted_at"), "responses", ["submitted_at"])
    op.create_table(
        "written_values",
        sa.Column("crm", sa.String(length=32), nullable=False),
        sa.Column("object", sa.String(length=16), nullable=False),
        sa.Column("record_id", sa.String(length=255), nullable=False),
        sa.Column("field", sa.String(length=255), nullable=False),
        sa.Column("value", sa.JSON(), nullable=True),
        sa.Column("written_at", _tz(), nullable=False),
        sa.PrimaryKeyConstraint(
            "crm", "object", "record_id", "field", name=op.f("pk_written_values")
        ),
    )
    op.create_table(
        "write_failures",
        sa.Column("crm", sa.String(length=32), nullable=False),
        sa.Column("object", sa.String(length=16), nullable=False),
        sa.Column("record_id", sa.String(length=255), nullable=False),
        sa.Column("error_code", sa.String(length=128), nullable=True),
        sa.Column("message", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_at", _tz(), nullable=False),
        sa.PrimaryKeyConstraint("crm", "object", "record_id", name=op.f("pk_write_failures")),
    )
    op.create_table(
        "alert_outbox",
        sa.Column("alert_id", sa.String(length=255), nullable=False),
        sa.Column("rule_id", sa.String(length=128), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=255), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", _tz(), nullable=False),
        sa.Column("sent_at", _tz(), nullable=True),
        sa.Column("message_ts", sa.String(length=64), nullable=True),
        sa.Column("message_channel", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("alert_id", name=op.f("pk_alert_outbox")),
    )
    op.create_index(
        op.f("ix_alert_outbox_status_created_at"), "alert_outbox", ["status", "created_at"]
    )
    op.create_table(
        "alert_state",
        sa.Column("rule_id", sa.String(length=128), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("firing", sa.Boolean(), nullable=False),
        sa.Column("since", _tz(), nullable=False),
        sa.Column("last_alert_at", _tz(), nullable=True),
        sa.Column("last_alert_id", sa.String(length=255), nullable=True),
        sa.Column("escalated_at", _tz(), nullable=True),
        sa.Column("closed_at", _tz(), nullable=True),
        sa.Column("closed_by", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("rule_id", "subject", name=op.f("pk_alert_state")),
    )
    op.create_table(
        "silences",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("rule_id", sa.String(length=128), nullable=True),
        sa.Column("account_id", sa.String(length=255), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=255), nullable=True),
        sa.Column("created_at", _tz(), nullable=False),
        sa.Column("expires_at", _tz(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_silences")),
    )
    op.create_table(
        "ingested_files",
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=1024), nullable=False),
        sa.Column("processed_at", _tz(), nullable=False),
        sa.Column("accepted", sa.Integer(), nullable=False),
        sa.Column("rejected", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("content_hash", name=op.f("pk_ingested_files")),
    )


def downgrade() -> None:
    for name in (
        "ingested_files",
        "silences",
        "alert_state",
        "alert_outbox",
        "write_failures",
        "written_values",
        "responses",
        "crm_records",
        "cursors",
        "cycles",
    ):
        op.drop_table(name)
