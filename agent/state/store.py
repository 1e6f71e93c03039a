"""The state store: durable bookkeeping in a SQLite file or a PostgreSQL database.

``StateStore.open(url)`` creates the engine for the dialect, migrates the schema to
the newest revision and hands out short transactions. Each method below is one
transaction of its own; large inputs are committed piece by piece (every piece is
idempotent, so a crash part-way loses nothing that a retry would not redo; see
``agent.state.pieces``). When data and the cursor that covers it must commit
together, use ``transaction()``, whose ``StateTx`` has the same methods inside one
transaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import structlog
from sqlalchemy import Engine, text
from sqlalchemy.engine import URL
from sqlalchemy.exc import OperationalError

from agent.config.logging import register_url_password
from agent.config.settings import Settings
from agent.core.contract import ObjectKind
from agent.core.models import Account, Contact, Response
from agent.core.ports import FieldUpdate, WriteOutcome
from agent.state import migrate
from agent.state.codec import JsonValue, utc_iso
from agent.state.dialect import (
    DEFAULT_URL,
    READ_ONLY,
    Dialect,
    bulk_cache,
    create_state_engine,
    dialect_of,
    normalise_url,
    safe_url,
    sqlite_path,
)
from agent.state.errors import MirrorBusyError, StateError
from agent.state.leader import Leadership, leadership_for
from agent.state.leader_epoch import Fence
from agent.state.ops_mirror import Echo, replacing_stream
from agent.state.ops_responses import BULK_ROWS, ResponseBatch
from agent.state.ops_settled import Settled
from agent.state.own_writes import OwnWrites
from agent.state.pieces import commit_in_pieces
from agent.state.records import (
    AddResult,
    CycleRecord,
    CycleStatus,
    FileRecord,
    WriteFailure,
    WrittenSettlement,
)
from agent.state.tx import StateTx

__all__ = ["MIRROR_WAIT_SECONDS", "StateStore"]

log = structlog.get_logger(__name__)

#: How long a reader of the whole mirror waits for a full CRM read under way to end (a
#: first read of 550,000 records takes a quarter of a minute on a small machine).
MIRROR_WAIT_SECONDS = 120.0
#: How often it looks.
_MIRROR_POLL = 0.5


class StateStore:
    """Typed access to the state database; safe to share between threads."""

    def __init__(self, engine: Engine, url: URL) -> None:
        self.engine = engine
        self.url = url
        self.dialect: Dialect = dialect_of(engine)
        #: Set by the running agent: cursor commits, write records and job records are
        #: then claimed against its leadership epoch (see ``agent.state.leader_epoch``).
        self.fence: Fence | None = None
        #: Tells a thread's own moves of the input version from anyone else's.
        self.own_writes = OwnWrites(engine, self.dialect)

    # -- life cycle -----------------------------------------------------------

    @classmethod
    def open(cls, url: str | URL = DEFAULT_URL, *, migrate_schema: bool = True) -> StateStore:
        """Connect to ``url`` and (by default) migrate it to the newest schema revision."""
        parsed = normalise_url(url)
        register_url_password(parsed.render_as_string(hide_password=False))
        store = cls(create_state_engine(parsed), parsed)
        try:
            if migrate_schema:
                migrate.upgrade(store.engine)
            else:
                store.check_schema()
        except OperationalError as exc:
            store.close()
            raise StateError(f"cannot use state database {store.safe_url}: {exc.orig}") from None
        except BaseException:
            store.close()
            raise
        log.debug("state store opened", url=store.safe_url, dialect=store.dialect)
        return store

    @classmethod
    def from_settings(cls, settings: Settings) -> StateStore:
        return cls.open(settings.state_url)

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @property
    def safe_url(self) -> str:
        """The database URL with its password masked."""
        return safe_url(self.url)

    @property
    def path(self) -> Path | None:
        """The SQLite database file; None on PostgreSQL."""
        return sqlite_path(self.url)

    def revision(self) -> str | None:
        """The schema revision the database is at."""
        return migrate.current_revision(self.engine)

    def check_schema(self) -> None:
        """Raise ``StateError`` unless the database is at the newest revision."""
        current, head = self.revision(), migrate.head_revision()
        if current != head:
            raise StateError(
                f"state database {self.safe_url} is at schema revision {current or 'none'}, "
                f"this ax-agent needs {head}: run `ax-agent state upgrade`"
            )

    def ping(self) -> None:
        """Raise unless the database answers (for readiness checks)."""
        with self.engine.connect() as conn:
            conn.execute(text("SELECT 1"))

    def leadership(self, name: str = "ax-agent") -> Leadership:
        """The leadership primitive for this database (see ``agent.state.leader``)."""
        return leadership_for(self.url, name)

    # -- transactions -----------------------------------------------------------

    @contextmanager
    def transaction(self, *, lock_timeout: float | None = None) -> Iterator[StateTx]:
        """One read-write transaction: committed on success, rolled back on any error.

        ``lock_timeout`` (seconds, PostgreSQL): a statement that waits longer than this
        for a row another session holds fails with ``OperationalError`` instead of
        waiting for as long as that session keeps its transaction open.
        """
        with self.engine.begin() as conn:
            if lock_timeout is not None and self.dialect == "postgresql":
                milliseconds = max(1, round(lock_timeout * 1000))
                conn.exec_driver_sql(f"SET LOCAL lock_timeout = {milliseconds}")
            yield StateTx(conn, self.dialect, self.fence)

    @contextmanager
    def reading(self, *, snapshot: bool = False) -> Iterator[StateTx]:
        """A transaction for reads only: on SQLite it does not take the write lock.

        ``snapshot``: every statement in it reads the database as one instant left it
        (PostgreSQL's repeatable read; on SQLite, whose file is in WAL mode, a read
        transaction always does)."""
        with self.engine.connect() as conn:
            options: dict[str, Any] = {READ_ONLY: True}
            if snapshot and self.dialect == "postgresql":
                options["isolation_level"] = "REPEATABLE READ"
            conn.execution_options(**options)
            with conn.begin():
                yield StateTx(conn, self.dialect)

    # -- cycles -----------------------------------------------------------------

    def start_cycle(self, job: str) -> int:
        with self.transaction() as tx:
            return tx.start_cycle(job)

    def finish_cycle(
        self,
        cycle_id: int,
        status: CycleStatus,
        counts: Mapping[str, int],
        error: str | None = None,
    ) -> bool:
        with self.transaction() as tx:
            return tx.finish_cycle(cycle_id, status, counts, error)

    def abandon_running_cycles(self, reason: str, before_epoch: int | None = None) -> int:
        with self.transaction() as tx:
            return tx.abandon_running_cycles(reason, before_epoch)

    def prune_cycles(self, before: datetime) -> int:
        with self.transaction() as tx:
            return tx.prune_cycles(before)

    def recent_cycles(self, limit: int = 20, job: str | None = None) -> list[CycleRecord]:
        with self.reading() as tx:
            return tx.recent_cycles(limit, job)

    def last_cycle(self, job: str) -> CycleRecord | None:
        with self.reading() as tx:
            return tx.last_cycle(job)

    # -- cursors ----------------------------------------------------------------

    def get_cursor(self, source: str, stream: str) -> str | None:
        with self.reading() as tx:
            return tx.get_cursor(source, stream)

    def set_cursor(self, source: str, stream: str, value: str) -> None:
        with self.transaction() as tx:
            tx.set_cursor(source, stream, value)

    def clear_cursor(self, source: str, stream: str) -> None:
        with self.transaction() as tx:
            tx.clear_cursor(source, stream)

    def all_cursors(self) -> dict[tuple[str, str], str]:
        with self.reading() as tx:
            return tx.all_cursors()

    # -- CRM mirror ---------------------------------------------------------------

    def upsert_records(
        self, crm: str, object: ObjectKind, records: Sequence[Account | Contact]
    ) -> int:
        """Store records, one transaction per piece; returns how many were new, changed
        or live again."""
        stored = 0

        def store(tx: StateTx, piece: list[Account | Contact]) -> None:
            nonlocal stored
            stored += tx.upsert_records(crm, object, piece)

        commit_in_pieces(self.transaction, records, store)
        return stored

    def mark_deleted(self, crm: str, object: ObjectKind, ids: Iterable[str]) -> int:
        with self.transaction() as tx:
            return tx.mark_deleted(crm, object, ids)

    def replace_all(
        self,
        crm: str,
        object: ObjectKind,
        records: Sequence[Account | Contact],
        cursor: str | None = None,
        *,
        own_values: bool = False,
        echo: Echo | None = None,
        on_changed: Callable[[list[str]], None] | None = None,
        on_echoed: Callable[[list[str]], None] | None = None,
    ) -> tuple[int, int]:
        """A full read, piece by piece; returns how many records it stored new, changed
        or live again, and how many it marked deleted (``own_values``, ``echo``,
        ``on_changed``, ``on_echoed``:
        as ``MirrorOps.stamp_records`` says).

        Each piece of ``records`` commits on its own (stamped with the read's one
        instant), so another writer waits for one piece, never for the whole read. The
        records the read did not return are marked deleted at the end, in one short
        transaction with ``cursor`` (when given). Until then a piece only adds or
        updates records the CRM returned, as each page of an incremental read does; a
        crash part-way deletes nothing and keeps the old cursor, so the next sync reads
        the whole CRM again and converges on what one transaction would have stored.
        """
        stamp = datetime.now(UTC)
        changed = 0
        marker = replacing_stream(object)
        with self.transaction() as tx:  # readers of the whole mirror wait for its end
            tx.set_cursor(crm, marker, utc_iso(stamp))

        def stamp_piece(tx: StateTx, piece: list[Account | Contact]) -> None:
            nonlocal changed
            changed += tx.stamp_records(
                crm,
                object,
                piece,
                stamp,
                own_values=own_values,
                echo=echo,
                on_changed=on_changed,
                on_echoed=on_echoed,
            )

        commit_in_pieces(self.transaction, records, stamp_piece)
        with self.transaction() as tx:
            deleted = tx.delete_unstamped(crm, object, stamp)
            if cursor is not None:
                tx.set_cursor(crm, object, cursor)
            tx.clear_cursor(crm, marker)
        return changed, deleted

    def load_mirror(
        self, crm: str, *, wait: float | None = None
    ) -> tuple[list[Account], list[Contact]]:
        """The live accounts and contacts of ``crm`` as one snapshot, never in the middle
        of a full read: its pieces commit one by one (``replace_all``), and until its
        end the mirror holds some records as read now, the others as read before, with
        none of the read's deletions. A reader in another process (``rules test``,
        ``plan coverage``, ``report``, ``history backfill`` over the state) polls for up
        to ``wait`` seconds (by default ``MIRROR_WAIT_SECONDS``) for the read to end,
        then raises ``MirrorBusyError``, which says since when and what ends it."""
        wait = MIRROR_WAIT_SECONDS if wait is None else wait
        deadline = time.monotonic() + wait
        told = False
        while True:
            with self.reading(snapshot=True) as tx:
                busy = tx.replacing(crm)
                if not busy:
                    return tx.load_accounts(crm), tx.load_contacts(crm)
            left = deadline - time.monotonic()
            if left <= 0:
                raise MirrorBusyError(_mirror_busy(crm, busy, wait))
            if not told:
                log.warning("mirror_read_under_way", crm=crm, since=min(busy.values()))
                told = True
            time.sleep(min(_MIRROR_POLL, left))

    def load_accounts(self, crm: str, reuse: Sequence[Account] = ()) -> list[Account]:
        with self.reading() as tx:
            return tx.load_accounts(crm, reuse)

    def load_contacts(self, crm: str, reuse: Sequence[Contact] = ()) -> list[Contact]:
        with self.reading() as tx:
            return tx.load_contacts(crm, reuse)

    def count_records(self, crm: str, object: ObjectKind) -> int:
        with self.reading() as tx:
            return tx.count_records(crm, object)

    # -- responses ----------------------------------------------------------------

    def add_responses(self, responses: Sequence[Response]) -> AddResult:
        """Store new responses, one transaction per piece (see ``StateTx.add_responses``).

        A repeat within ``responses`` is compared with its first occurrence, whichever
        batch that fell in.
        """
        batch = ResponseBatch(responses)
        added: list[Response] = []
        with bulk_cache() if len(batch.unique) >= BULK_ROWS else nullcontext():
            commit_in_pieces(
                self.transaction,
                batch.unique,
                lambda tx, piece: added.extend(tx.store_batch(piece, batch)),
            )
        return batch.result(added)

    def has_response(self, source: str, response_id: str) -> bool:
        with self.reading() as tx:
            return tx.has_response(source, response_id)

    def load_responses(self, since: datetime | None = None) -> list[Response]:
        with self.reading() as tx:
            return tx.load_responses(since)

    def responses_by_key(self, keys: Iterable[tuple[str, str]]) -> list[Response]:
        """The stored responses of ``keys`` ((source, response_id)), oldest first."""
        with self.reading() as tx:
            return tx.responses_by_key(keys)

    def known_response_ids(self, source: str, ids: Iterable[str]) -> set[str]:
        """Which of ``ids`` the store holds for ``source``."""
        with self.reading() as tx:
            return tx.known_response_ids(source, ids)

    def count_responses(self) -> int:
        with self.reading() as tx:
            return tx.count_responses()

    # -- write-back bookkeeping -------------------------------------------------------

    def written_values(
        self, crm: str, object: ObjectKind, ids: Iterable[str] | None = None
    ) -> dict[str, dict[str, JsonValue]]:
        with self.reading() as tx:
            return tx.written_values(crm, object, ids)

    def written_since_read(
        self, crm: str, object: ObjectKind, ids: Iterable[str] | None = None
    ) -> dict[str, dict[str, JsonValue]]:
        with self.reading() as tx:
            return tx.written_since_read(crm, object, ids)

    def record_written(self, crm: str, object: ObjectKind, updates: Sequence[FieldUpdate]) -> int:
        with self.transaction() as tx:
            return tx.record_written(crm, object, updates)

    def record_failures(
        self, crm: str, object: ObjectKind, outcomes: Sequence[WriteOutcome]
    ) -> int:
        with self.transaction() as tx:
            return tx.record_failures(crm, object, outcomes)

    def clear_failures(self, crm: str, object: ObjectKind, ids: Iterable[str]) -> int:
        with self.transaction() as tx:
            return tx.clear_failures(crm, object, ids)

    def written_settlement(self, crm: str, object: ObjectKind) -> WrittenSettlement | None:
        with self.reading() as tx:
            return tx.written_settlement(crm, object)

    def settled_digests(self, crm: str, object: ObjectKind, ids: Sequence[str]) -> dict[str, str]:
        with self.reading() as tx:
            return tx.settled_digests(crm, object, ids)

    def moved_since_settled(
        self, crm: str, object: ObjectKind, read_from: datetime, written_to: datetime
    ) -> set[str]:
        with self.reading() as tx:
            return tx.moved_since_settled(crm, object, read_from, written_to)

    def settle_written(
        self,
        crm: str,
        object: ObjectKind,
        head: WrittenSettlement,
        digests: Iterable[Mapping[str, str]],
        unsettled: Iterable[str] = (),
        *,
        whole: bool = False,
    ) -> None:
        """A write-back of ``object`` ran to its end (``head``: its field mappings and
        instants): ``digests`` (a piece at a time) are
        its records' planned values that moved, or with ``whole`` every record's (the
        stored ones go first); ``unsettled``: the records whose write failed.

        The digests commit a piece at a time (an answer's store never waits behind half
        a million of them), the head last. A settlement cut short leaves digests that
        hold under the older head too: a record stored with its new digest was compared
        by this write-back (written, so written after the older head ended, or found
        equal), and one whose digests went is compared again."""
        if whole:
            with self.transaction() as tx:
                tx.clear_settled(crm, object)
        rows = (item for piece in digests for item in piece.items())
        commit_in_pieces(
            self.transaction, rows, lambda tx, piece: tx.store_settled(crm, object, piece)
        )
        with self.transaction() as tx:
            tx.settle_head(crm, object, head, unsettled)

    def failed_records(self, crm: str, object: ObjectKind) -> dict[str, WriteFailure]:
        with self.reading() as tx:
            return tx.failed_records(crm, object)

    # -- the coverage plan ------------------------------------------------------------

    def replace_survey_plan(
        self,
        crm: str,
        rows: Iterable[tuple[str, str, str]],
        as_of: datetime,
        summary: Mapping[str, Any],
    ) -> int:
        with self.transaction() as tx:
            return tx.replace_survey_plan(crm, rows, as_of, summary)

    def survey_plan_ids(self, crm: str) -> set[str]:
        with self.reading() as tx:
            return tx.survey_plan_ids(crm)

    def survey_plan_summary(self, crm: str) -> dict[str, Any] | None:
        with self.reading() as tx:
            return tx.survey_plan_summary(crm)

    # -- ingested files ---------------------------------------------------------------

    def file_seen(self, content_hash: str) -> bool:
        with self.reading() as tx:
            return tx.file_seen(content_hash)

    def mark_file(self, content_hash: str, name: str, accepted: int, rejected: int) -> bool:
        with self.transaction() as tx:
            return tx.mark_file(content_hash, name, accepted, rejected)

    def get_file(self, content_hash: str) -> FileRecord | None:
        with self.reading() as tx:
            return tx.get_file(content_hash)

    # -- the settled state ------------------------------------------------------------

    def input_version(self) -> int:
        with self.reading() as tx:
            return tx.input_version()

    def settled(self, crm: str) -> Settled | None:
        with self.reading() as tx:
            return tx.settled(crm)

    def set_settled(self, crm: str, settled: Settled | None) -> None:
        with self.transaction() as tx:
            tx.set_settled(crm, settled)


def _mirror_busy(crm: str, busy: Mapping[str, str], waited: float) -> str:
    """What a reader of the whole mirror says when a full read did not end in time."""
    objects = " and ".join(f"{obj}s" for obj in sorted(busy))
    since = min(busy.values())
    return (
        f"the {crm} CRM mirror is halfway through a full read of its {objects} "
        f"(begun {since}; waited {waited:.0f} s): its records are a mix of that read and "
        "the one before until it ends. A running agent ends it in its CRM sync; if none "
        "runs (the read stopped part-way), `ax-agent run --once` completes it"
    )
