"""Figure history: per-account rows when a figure changes, per-portfolio points per cycle.

Revision 0002_history (after 0001).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_history"
down_revision = "0001"
branch_labels = None
depends_on = None


def _tz() -> sa.DateTime:
    # agent.state.schema.UtcDateTime stores into this column type on every dialect.
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "history_accounts",
        sa.Column("crm", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=255), nullable=False),
        sa.Column("as_of", _tz(), nullable=False),
        sa.Column("digest", sa.String(length=32), nullable=False),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.Column("since", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("crm", "account_id", "as_of", name=op.f("pk_history_accounts")),
    )
    op.create_index(op.f("ix_history_accounts_crm_as_of"), "history_accounts", ["crm", "as_of"])
    op.create_table(
        "history_heads",
        sa.Column("crm", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=255), nullable=False),
        sa.Column("as_of", _tz(), nullable=False),
        sa.Column("digest", sa.String(length=32), nullable=False),
        sa.PrimaryKeyConstraint("crm", "account_id", name=op.f("pk_history_heads")),
    )
    op.create_table(
        "history_portfolio",
        sa.Column("crm", sa.String(length=32), nullable=False),
        sa.Column("as_of", _tz(), nullable=False),
        sa.Column("figures", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("crm", "as_of", name=op.f("pk_history_portfolio")),
    )


def downgrade() -> None:
    op.drop_table("history_portfolio")
    op.drop_table("history_heads")
    op.drop_index(op.f("ix_history_accounts_crm_as_of"), table_name="history_accounts")
    op.drop_table("history_accounts")
