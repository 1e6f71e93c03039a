"""The state store's tables: one SQLAlchemy Core metadata, migrated by Alembic.

What lives here, and why it must survive a crash:
- ``cycles``: a log of every job run (start, end, counts, error) for operators.
- ``cursors``: where each source's incremental read resumes.
- ``crm_records``: a mirror of accounts/contacts, so an incremental read can be
  merged into the whole portfolio the metrics need.
- ``responses``: every accepted survey response (idempotency by source + id).
- ``written_values`` / ``write_failures``: the last value the CRM confirmed per
  record and field (one row per record), and per-record errors to retry next cycle.
- ``alert_outbox`` / ``alert_state`` / ``silences``: alerts recorded before they
  are sent, the firing state per rule and subject, and admins' silences.
- ``ingested_files``: content hashes of survey files already processed.
- ``history_accounts`` / ``history_portfolio``: the figures over time (an account's
  row only when one of its figures changed; one portfolio point per cycle, thinned).
- ``survey_plan`` / ``survey_plans``: the contacts the last coverage plan asks to
  survey (what the ``survey_next`` field is written from, the same on every replica and
  after a restart) and that plan's headline (what the digest and the rules read).
- ``leadership``: the leader's epoch (fencing token) and lease, one row per lock name.
  Every side effect is claimed against it (see ``agent.state.leader_epoch``).
- ``crm_tasks``: the task outbox: CRM tasks recorded before they are created (keyed
  by the alert key the CRM record carries too), their CRM id, and both ends of a
  closed loop (completed in the CRM, closed in Slack or the survey).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    and_,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.expression import Join

__all__ = [
    "UNVERSIONED",
    "VERSIONED",
    "UtcDateTime",
    "alert_outbox",
    "alert_state",
    "crm_records",
    "crm_tasks",
    "cursors",
    "cycles",
    "history_accounts",
    "history_heads",
    "history_portfolio",
    "ingested_files",
    "input_versions",
    "leadership",
    "metadata",
    "responses",
    "settled_cycles",
    "silences",
    "survey_plan",
    "survey_plans",
    "write_failures",
    "written_settled",
    "written_settled_heads",
    "written_values",
]

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware instant on every dialect, stored and returned in UTC.

    PostgreSQL keeps the zone (``timestamptz``) but SQLite has no such type and
    SQLAlchemy would silently drop the offset; normalising to UTC on the way in and
    attaching UTC on the way out gives the same aware values back from both. A naive
    value is read as UTC, as DOMAIN.md reads a timestamp without zone.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected a datetime from the database, got {type(value).__name__}")
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


_TZ = UtcDateTime()

cycles = Table(
    "cycles",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("job", String(64), nullable=False),
    Column("started_at", _TZ, nullable=False),
    Column("finished_at", _TZ),
    Column("status", String(16), nullable=False),  # running | ok | failed
    Column("counts", JSON, nullable=False, default=dict),
    Column("error", Text),
    #: Which agent ran it (``host:pid``) and under which leadership epoch.
    Column("replica", String(255)),
    Column("epoch", Integer),
    Index(None, "job", "started_at"),
)

cursors = Table(
    "cursors",
    metadata,
    Column("source", String(64), primary_key=True),
    Column("stream", String(64), primary_key=True),
    Column("value", Text, nullable=False),
    Column("updated_at", _TZ, nullable=False),
)

crm_records = Table(
    "crm_records",
    metadata,
    Column("crm", String(32), primary_key=True),
    Column("object", String(16), primary_key=True),  # account | contact
    Column("record_id", String(255), primary_key=True),
    Column("payload", JSON, nullable=False),
    Column("deleted", Boolean, nullable=False, default=False),
    Column("seen_at", _TZ, nullable=False),  # last read
    # last new, changed, deleted or live again (nullable only as a column added later)
    Column("changed_at", _TZ),
)

responses = Table(
    "responses",
    metadata,
    Column("source", String(255), primary_key=True),
    Column("response_id", String(255), primary_key=True),
    Column("content_hash", String(64), nullable=False),
    Column("email", String(320)),
    Column("score", Integer, nullable=False),
    Column("submitted_at", _TZ, nullable=False),
    Column("driver", String(255)),
    Column("comment", Text),
    Column("account_hint", String(255)),
    Column("loop_closed_at", _TZ),
    Column("received_at", _TZ, nullable=False),
    # No index on ``submitted_at``: nothing reads responses by instant, and keeping one
    # was half of a large ingest's insert time (revision 0008).
)

#: One row per record the CRM confirmed writes for: ``fields`` maps each field to
#: ``[value, written at]`` (plain JSON, the instant as ``agent.state.codec.written_stamp``)
#: and ``written_at`` is the newest of those instants, so a query can skip the records
#: read again since their last write without opening the JSON.
written_values = Table(
    "written_values",
    metadata,
    Column("crm", String(32), primary_key=True),
    Column("object", String(16), primary_key=True),
    Column("record_id", String(255), primary_key=True),
    Column("fields", JSON, nullable=False),
    Column("written_at", _TZ, nullable=False),
)


def written_with_records(*, outer: bool = False) -> Join:
    """``written_values`` joined to each record's mirror row (for its ``seen_at``: a
    write after it stands in for the CRM's value); ``outer`` keeps writes to records
    the mirror does not hold."""
    w, r = written_values.c, crm_records.c
    on = and_(r.crm == w.crm, r.object == w.object, r.record_id == w.record_id)
    if outer:
        return written_values.outerjoin(crm_records, on)
    return written_values.join(crm_records, on)


write_failures = Table(
    "write_failures",
    metadata,
    Column("crm", String(32), primary_key=True),
    Column("object", String(16), primary_key=True),
    Column("record_id", String(255), primary_key=True),
    Column("error_code", String(128)),
    Column("message", Text),
    Column("attempts", Integer, nullable=False, default=1),
    Column("last_at", _TZ, nullable=False),
)

#: What the last write-back that ran to its end left settled, per record: a digest of
#: the values it planned (``agent.sync.written_base``). A write-back in a new process
#: compares only the records whose planned values moved since, or that were read or
#: written after it (the head's instants), or whose write failed.
written_settled = Table(
    "written_settled",
    metadata,
    Column("crm", String(32), primary_key=True),
    Column("object", String(16), primary_key=True),
    Column("record_id", String(255), primary_key=True),
    Column("digest", String(32), nullable=False),
)

#: Per CRM and object, the settling write-back: its field mappings (a digest), when it
#: began (reads after it are due again) and when it ended (writes after it are due).
written_settled_heads = Table(
    "written_settled_heads",
    metadata,
    Column("crm", String(32), primary_key=True),
    Column("object", String(16), primary_key=True),
    Column("specs", String(32), nullable=False),
    Column("read_from", _TZ, nullable=False),
    Column("written_to", _TZ, nullable=False),
)

alert_outbox = Table(
    "alert_outbox",
    metadata,
    Column("alert_id", String(255), primary_key=True),  # deterministic: rule + subject + episode
    Column("rule_id", String(128), nullable=False),
    Column("scope", String(16), nullable=False),
    Column("subject", String(255), nullable=False),
    Column("kind", String(16), nullable=False, default="alert"),  # alert | escalation | digest
    Column("channel", String(255)),
    Column("payload", JSON, nullable=False),
    Column("status", String(16), nullable=False),  # pending | sent | suppressed | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("created_at", _TZ, nullable=False),
    Column("sent_at", _TZ),
    Column("message_ts", String(64)),
    Column("message_channel", String(64)),
    #: The leadership epoch that last claimed this row for a send, and when.
    Column("claimed_epoch", Integer),
    Column("claimed_at", _TZ),
    Index(None, "status", "created_at"),
)

alert_state = Table(
    "alert_state",
    metadata,
    Column("rule_id", String(128), primary_key=True),
    Column("subject", String(255), primary_key=True),
    Column("firing", Boolean, nullable=False),
    Column("since", _TZ, nullable=False),
    Column("last_alert_at", _TZ),
    Column("last_alert_id", String(255)),
    Column("escalated_at", _TZ),
    Column("closed_at", _TZ),
    Column("closed_by", String(255)),
)

silences = Table(
    "silences",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("rule_id", String(128)),
    Column("account_id", String(255)),
    Column("reason", Text, nullable=False),
    Column("created_by", String(255)),
    Column("created_at", _TZ, nullable=False),
    Column("expires_at", _TZ, nullable=False),
)

ingested_files = Table(
    "ingested_files",
    metadata,
    Column("content_hash", String(64), primary_key=True),
    Column("name", String(1024), nullable=False),
    Column("processed_at", _TZ, nullable=False),
    Column("accepted", Integer, nullable=False),
    Column("rejected", Integer, nullable=False),
)

history_accounts = Table(
    "history_accounts",
    metadata,
    Column("crm", String(32), primary_key=True),
    Column("account_id", String(255), primary_key=True),
    Column("as_of", _TZ, primary_key=True),
    Column("digest", String(32), nullable=False),  # of the figures: a change is a new digest
    Column("figures", JSON, nullable=False),  # the metrics document's account keys
    Column(
        "since", JSON, nullable=False
    ),  # per key: [its value began at, days the one before held]
    Index(None, "crm", "as_of"),
)

history_heads = Table(
    "history_heads",
    metadata,
    Column("crm", String(32), primary_key=True),
    Column("account_id", String(255), primary_key=True),
    Column("as_of", _TZ, nullable=False),  # of the account's newest history row
    Column("digest", String(32), nullable=False),
)

history_portfolio = Table(
    "history_portfolio",
    metadata,
    Column("crm", String(32), primary_key=True),
    Column("as_of", _TZ, primary_key=True),
    Column("figures", JSON, nullable=False),  # the metrics document's portfolio keys
)

survey_plan = Table(
    "survey_plan",
    metadata,
    Column("crm", String(32), primary_key=True),
    Column("contact_id", String(255), primary_key=True),
    Column("account_id", String(255), nullable=False),
    Column("kind", String(16), nullable=False),  # "plan" or "tier_gap"
    Column("planned_at", _TZ, nullable=False),
    Column("as_of", _TZ, nullable=False),
)

survey_plans = Table(
    "survey_plans",
    metadata,
    Column("crm", String(32), primary_key=True),
    Column("as_of", _TZ, nullable=False),
    Column("planned_at", _TZ, nullable=False),
    Column("summary", JSON, nullable=False),
)

leadership = Table(
    "leadership",
    metadata,
    Column("name", String(128), primary_key=True),
    #: Strictly increasing: every new leader takes the next one.
    Column("epoch", Integer, nullable=False),
    Column("host", String(255)),
    Column("pid", Integer),
    #: The server process of the leader's advisory-lock session (PostgreSQL), if it holds it.
    Column("lock_pid", Integer),
    Column("acquired_at", _TZ),
    Column("renewed_at", _TZ),
    #: The leader renews this through its heartbeat; once past, a standby may take over.
    Column("lease_expires_at", _TZ, nullable=False),
)

crm_tasks = Table(
    "crm_tasks",
    metadata,
    Column("key", String(255), primary_key=True),  # the alert key, also on the CRM record
    Column("crm", String(32), nullable=False),
    Column("rule_id", String(128), nullable=False),
    Column("subject", String(255), nullable=False),  # the rule's subject (source/response_id)
    Column("account_id", String(255), nullable=False),
    Column("contact_id", String(255)),
    Column("response_source", String(255)),
    Column("response_id", String(255)),
    Column("owner_email", String(320)),
    Column("owner_id", String(255)),
    Column("fallback_email", String(320)),
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("due_at", _TZ, nullable=False),
    Column("priority", String(8), nullable=False),
    Column("status", String(16), nullable=False),  # pending | open | completed
    Column("crm_task_id", String(255)),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("created_at", _TZ, nullable=False),
    Column("sent_at", _TZ),
    Column("crm_completed_at", _TZ),  # completed in the CRM (read back)
    Column("loop_closed_at", _TZ),  # the loop closed elsewhere: Slack, survey, CRM field
    Column("closed_by", String(255)),
    Column("push_completion", Boolean, nullable=False, default=False),
    Index(None, "status"),
    Index(None, "rule_id", "account_id", "created_at"),
)

#: One row: a counter every write to an input of the cycle's figures and decisions moves,
#: in the writing transaction itself (database triggers, see ``VERSIONED``).
input_versions = Table(
    "input_versions",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", BigInteger, nullable=False),
)

#: Per CRM: the last whole cycle that changed nothing, what it rested on and until when
#: it holds (``agent.sync.settled``).
settled_cycles = Table(
    "settled_cycles",
    metadata,
    Column("crm", String(32), primary_key=True),
    Column("fingerprint", String(64), nullable=False),
    Column("as_of", _TZ, nullable=False),
    #: The first instant at which the same inputs can give another cycle (null: never).
    Column("horizon", _TZ),
    #: The portfolio block of the cycle's metrics document (its per-cycle history point).
    Column("portfolio", JSON, nullable=False),
    Column("settled_at", _TZ, nullable=False),
)

#: The tables whose writes move ``input_versions`` (what a cycle computes and decides from).
VERSIONED: tuple[str, ...] = (
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

#: The versioned tables that take writes of a million rows. On SQLite their writes move
#: the version once per statement (``agent.state.versioning``) instead of by a trigger,
#: which SQLite runs once per row; PostgreSQL's triggers run once per statement anyway.
VERSIONED_BY_STATEMENT: tuple[str, ...] = ("crm_records", "responses", "written_values")

#: The tables that do not, and why.
UNVERSIONED: dict[str, str] = {
    "cycles": "the jobs' log, read by no computation",
    "cursors": "where reading resumes; what it reads lands in versioned tables",
    "ingested_files": "which drop files were read; their answers land in responses",
    "history_portfolio": "a point per cycle; the settled state compares the last one",
    "leadership": "who runs the agent",
    "input_versions": "the counter itself",
    "settled_cycles": "the settled state itself",
    "written_settled": "what the last write-back settled; the plan is the same without it",
    "written_settled_heads": "the same, per object",
}
