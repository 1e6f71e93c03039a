"""The responses lose their index on ``submitted_at``.

No query of the agent's reads responses by their instant: a computation reads all of
them, a new answer is looked up by its key. The index cost every insert a random
place in it (answers arrive in no instant order): in a first ingest of 1,000,000
answers it was half of SQLite's insert time, and the part that grew faster than the
portfolio (5 times the answers took 7 times as long with it, under 5 times without).

Revision 0008_responses_unindexed (after 0007_written_records).
"""

from __future__ import annotations

from alembic import op

revision = "0008_responses_unindexed"
down_revision = "0007_written_records"
branch_labels = None
depends_on = None

_INDEX = "ix_responses_submitted_at"


def upgrade() -> None:
    op.drop_index(_INDEX, table_name="responses")


def downgrade() -> None:
    op.create_index(_INDEX, "responses", ["submitted_at"])
