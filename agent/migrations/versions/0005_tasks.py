"""CRM tasks: the task outbox keyed by alert key, with both ends of a closed loop.

Revision 0005_tasks (after 0004_fencing).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_tasks"
down_revision = "0004_fencing"
branch_labels = None
depends_on = None


def _tz() -> sa.DateTime:
    # agent.state.schema.UtcDateTime stores into this column type on every dialect.
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "crm_tasks",
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("crm", sa.String(length=32), nullable=False),
        sa.Column("rule_id", sa.String(length=128), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("account_id", sa.String(length=255), nullable=False),
        sa.Column("contact_id", sa.String(length=255), nullable=True),
        sa.Column("response_source", sa.String(length=255), nullable=True),
        sa.Column("response_id", sa.String(length=255), nullable=True),
        sa.Column("owner_email", sa.String(length=320), nullable=True),
        sa.Column("owner_id", sa.String(length=255), nullable=True),
        sa.Column("fallback_email", sa.String(length=320), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("due_at", _tz(), nullable=False),
        sa.Column("priority", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("crm_task_id", sa.String(length=255), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", _tz(), nullable=False),
        sa.Column("sent_at", _tz(), nullable=True),
        sa.Column("crm_completed_at", _tz(), nullable=True),
        sa.Column("loop_closed_at", _tz(), nullable=True),
        sa.Column("closed_by", sa.String(length=255), nullable=True),
        sa.Column("push_completion", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_crm_tasks")),
    )
    op.create_index(op.f("ix_crm_tasks_status"), "crm_tasks", ["status"])
    op.create_index(
        op.f("ix_crm_tasks_rule_id_account_id_created_at"),
        "crm_tasks",
        ["rule_id", "account_id", "created_at"],
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_crm_tasks_rule_id_account_id_created_at"), table_name="crm_tasks")
    op.drop_index(op.f("ix_crm_tasks_status"), table_name="crm_tasks")
    op.drop_table("crm_tasks")
