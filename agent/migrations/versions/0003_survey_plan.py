"""The coverage plan's contacts, from which the opt-in ``survey_next`` field is written.

Revision 0003_survey_plan.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_survey_plan"
down_revision = "0002_history"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "survey_plan",
        sa.Column("crm", sa.String(length=32), nullable=False),
        sa.Column("contact_id", sa.String(length=255), nullable=False),
        sa.Column("account_id", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("planned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("crm", "contact_id", name=op.f("pk_survey_plan")),
    )
    op.create_table(
        "survey_plans",
        sa.Column("crm", sa.String(length=32), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("planned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("summary", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("crm", name=op.f("pk_survey_plans")),
    )


def downgrade() -> None:
    op.drop_table("survey_plans")
    op.drop_table("survey_plan")
