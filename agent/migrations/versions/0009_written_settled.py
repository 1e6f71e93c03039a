"""What the last write-back settled, kept across processes.

``written_settled`` holds, per CRM record, a digest of the values the last write-back
that ran to its end planned for it; ``written_settled_heads`` holds, per CRM and
object, that write-back's field mappings (a digest), when it began and when it ended.
A write-back in a new process then compares only the records whose planned values
moved, that a sync read after it began, that were written after it ended, or whose
write failed (``agent.sync.written_base``). Neither table is an input of any figure or
decision: the plan is the same without them, so they move no input version.

Revision 0009_written_settled (after 0008_responses_unindexed).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_written_settled"
down_revision = "0008_responses_unindexed"
branch_labels = None
depends_on = None


def _tz() -> sa.DateTime:
    # agent.state.schema.UtcDateTime stores into this column type on every dialect.
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "written_settled",
        sa.Column("crm", sa.String(length=32), nullable=False),
        sa.Column("object", sa.String(length=16), nullable=False),
        sa.Column("record_id", sa.String(length=255), nullable=False),
        sa.Column("digest", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("crm", "object", "record_id", name=op.f("pk_written_settled")),
    )
    op.create_table(
        "written_settled_heads",
        sa.Column("crm", sa.String(length=32), nullable=False),
        sa.Column("object", sa.String(length=16), nullable=False),
        sa.Column("specs", sa.String(length=32), nullable=False),
        sa.Column("read_from", _tz(), nullable=False),
        sa.Column("written_to", _tz(), nullable=False),
        sa.PrimaryKeyConstraint("crm", "object", name=op.f("pk_written_settled_heads")),
    )


def downgrade() -> None:
    op.drop_table("written_settled_heads")
    op.drop_table("written_settled")
