"""Leadership epochs and leases, claims on outbox rows, replica and epoch on job runs.

Revision 0004_fencing (after 0003_survey_plan).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_fencing"
down_revision = "0003_survey_plan"
branch_labels = None
depends_on = None


def _tz() -> sa.DateTime:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "leadership",
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("lock_pid", sa.Integer(), nullable=True),
        sa.Column("acquired_at", _tz(), nullable=True),
        sa.Column("renewed_at", _tz(), nullable=True),
        sa.Column("lease_expires_at", _tz(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leadership")),
    )
    with op.batch_alter_table("alert_outbox") as batch:
        batch.add_column(sa.Column("claimed_epoch", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("claimed_at", _tz(), nullable=True))
    with op.batch_alter_table("cycles") as batch:
        batch.add_column(sa.Column("replica", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("epoch", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cycles") as batch:
        batch.drop_column("epoch")
        batch.drop_column("replica")
    with op.batch_alter_table("alert_outbox") as batch:
        batch.drop_column("claimed_at")
        batch.drop_column("claimed_epoch")
    op.drop_table("leadership")
