"""The mirror keeps when each record last changed, apart from when it was last read.

``crm_records.seen_at`` moves at every read of a record; ``changed_at`` moves only when
the record's fields changed, it was deleted or it came back. A write-back compares the
records a sync changed since its last settlement, not every record a sync read: a
plain-file CRM reads a whole file again for one changed row, and a full read of any
CRM reads every record. Existing rows take their ``seen_at``.

Revision 0011_mirror_changed_at (after 0010_versions_by_statement).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011_mirror_changed_at"
down_revision = "0010_versions_by_statement"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # agent.state.schema.UtcDateTime stores into this column type on every dialect.
    op.add_column("crm_records", sa.Column("changed_at", sa.DateTime(timezone=True)))
    op.execute("UPDATE crm_records SET changed_at = seen_at")


def downgrade() -> None:
    with op.batch_alter_table("crm_records") as batch:
        batch.drop_column("changed_at")
