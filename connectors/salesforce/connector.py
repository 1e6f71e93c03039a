"""The Salesforce CRM connector: the ``CrmConnector`` protocol over the pieces beside it."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import structlog

from agent.core.contract import FieldSpec, ObjectKind
from agent.core.models import Account, Contact
from agent.core.ports import Batch, FieldProblem, FieldUpdate, WriteOutcome
from connectors.common.watermark import Watermark, advance, already_seen, decode, encode
from connectors.salesforce.bulk import BulkQuery
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.cursor import parse_stamp
from connectors.salesforce.query import QueryReader, Record
from connectors.salesforce.records import AccountMapping, ContactMapping, to_account, to_contact
from connectors.salesforce.schema import SOBJECTS, Schema, check_read_fields, check_specs
from connectors.salesforce.settings import SalesforceSettings
from connectors.salesforce.soql import select
from connectors.salesforce.tasks import SalesforceTasks
from connectors.salesforce.write import CollectionWriter, sobject_record

__all__ = ["DRY_RUN", "SalesforceConnector"]

T = TypeVar("T")
_log = structlog.get_logger(__name__)

#: The error code of every outcome of a dry-run write: nothing was sent, nothing is written.
DRY_RUN = "DRY_RUN"


class SalesforceConnector:
    """Accounts and contacts in, field updates out, for one Salesforce org."""

    name = "salesforce"

    def __init__(
        self,
        client: SalesforceClient,
        settings: SalesforceSettings,
        specs: Sequence[FieldSpec],
        *,
        dry_run: bool = False,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.client = client
        self.schema = Schema(client)
        self.dry_run = dry_run
        self._settings = settings
        self._specs = tuple(specs)
        self._clock = clock
        self._overlap = timedelta(seconds=settings.cursor_overlap_seconds)
        bulk = BulkQuery(client, poll_seconds=settings.bulk_poll_seconds, sleep=sleep)
        self._reader = QueryReader(
            client,
            bulk=bulk,
            bulk_threshold=settings.bulk_threshold,
            use_composite=settings.use_composite,
        )
        self._writer = CollectionWriter(
            client,
            collection_size=settings.collection_size,
            collections_per_request=settings.collections_per_request,
            use_composite=settings.use_composite,
        )
        self.max_write_batch = self._writer.max_batch

    def task_crm(self) -> SalesforceTasks:
        """The org's ``Task`` list (``TaskCrm``), sharing this client and writer."""
        return SalesforceTasks(self.client, self._writer, overlap=self._overlap, clock=self._clock)

    def reset_budget(self) -> None:
        """Start a new run's API budget and retry budget (a connector kept across cycles)."""
        self.client.budget.reset()
        self.client.policy.start_job()

    # -- reading -------------------------------------------------------------------------

    def read_accounts(self, cursor: str | None) -> Iterator[Batch[Account]]:
        s = self._settings
        mapping = AccountMapping(
            revenue_field=s.revenue_field,
            potential_field=s.potential_field,
            domain_fields=tuple(s.domain_fields),
            extra_fields=tuple(s.extra_fields),
            crm_fields=self._present_specs("account"),
        )
        return self._read("Account", mapping.fields(), cursor, lambda r: to_account(r, mapping))

    def read_contacts(self, cursor: str | None) -> Iterator[Batch[Contact]]:
        mapping = ContactMapping(
            tier_field=self._settings.tier_field, crm_fields=self._present_specs("contact")
        )
        return self._read("Contact", mapping.fields(), cursor, lambda r: to_contact(r, mapping))

    def _present_specs(self, obj: ObjectKind) -> tuple[FieldSpec, ...]:
        """The agent's fields that exist, so their current values can be read."""
        specs = (s for s in self._specs if s.object == obj)
        return tuple(s for s in specs if self.schema.field(SOBJECTS[obj], s.salesforce))

    def _read(
        self,
        sobject: str,
        fields: Sequence[str],
        cursor: str | None,
        convert: Callable[[Record], T | None],
    ) -> Iterator[Batch[T]]:
        local_start = self._clock()
        mark = decode(cursor, self._overlap, parse_stamp)
        since = mark.since.replace(microsecond=0) if mark is not None else None
        incremental = since is not None
        extra = ["SystemModstamp", "IsDeleted"] if incremental else ["SystemModstamp"]
        soql = select(sobject, [*fields, *extra], since=since)
        log = _log.bind(connector=self.name, object=sobject, incremental=incremental)
        log.info("salesforce_read_started", since=since.isoformat() if since else None)
        started: datetime | None = None
        recent: list[tuple[str, datetime | None]] = []
        pending: Batch[T] | None = None
        totals: Counter[str] = Counter()
        for page in self._reader.pages(soql, include_deleted=incremental):
            if started is None:
                started = self._read_start(local_start)
            fresh, skipped = _unseen(page, mark, started - self._overlap, recent)
            batch = _to_batch(fresh, convert)
            totals.update(records=len(batch.records), deleted=len(batch.deleted_ids))
            totals.update(skipped=skipped)
            if pending is not None:
                yield pending
            pending = batch
        assert pending is not None  # a query always has a first page
        assert started is not None
        final = encode(advance(mark, recent, started, self._overlap))
        log.info("salesforce_read_finished", **totals)
        yield Batch(pending.records, pending.deleted_ids, cursor=final)

    def _read_start(self, local_start: datetime) -> datetime:
        """When the read began by Salesforce's clock (its ``Date``), never later than ours."""
        server = self.client.server_time
        return local_start if server is None else min(local_start, server)

    # -- checking ------------------------------------------------------------------------

    def check_fields(self, specs: Sequence[FieldSpec]) -> list[FieldProblem]:
        s = self._settings
        reads: list[tuple[ObjectKind, str, str, bool]] = [
            ("account", "revenue_field", s.revenue_field, True),
            *(("account", "domain_fields", f, False) for f in s.domain_fields),
            *(("account", "extra_fields", f, False) for f in s.extra_fields),
        ]
        if s.potential_field:
            reads.append(("account", "potential_field", s.potential_field, True))
        if s.tier_field:
            reads.append(("contact", "tier_field", s.tier_field, False))
        return [*check_read_fields(self.schema, reads), *check_specs(self.schema, specs)]

    # -- writing -------------------------------------------------------------------------

    def write(self, obj: ObjectKind, updates: Sequence[FieldUpdate]) -> list[WriteOutcome]:
        if not updates:
            return []
        sobject = SOBJECTS[obj]
        log = _log.bind(connector=self.name, object=sobject)
        if self.dry_run:
            return self._dry_run(sobject, updates, log)
        outcomes = self._writer.write(sobject, updates)
        failed = Counter(o.error_code for o in outcomes if not o.ok)
        log.info(
            "salesforce_write",
            records=len(updates),
            written=len(updates) - sum(failed.values()),
            failed=sum(failed.values()),
            errors=dict(failed),
        )
        return outcomes

    def _dry_run(
        self, sobject: str, updates: Sequence[FieldUpdate], log: Any
    ) -> list[WriteOutcome]:
        """Nothing sent: each outcome says what would have been written."""
        outcomes = []
        for update in updates:
            record = sobject_record(sobject, update)
            log.info("salesforce_write_planned", record_id=update.record_id, values=record)
            fields = {k: v for k, v in record.items() if k not in {"attributes", "id"}}
            message = f"dry run, not sent: {sobject} {update.record_id} {json.dumps(fields)}"
            outcomes.append(
                WriteOutcome(update.record_id, ok=False, error_code=DRY_RUN, message=message)
            )
        return outcomes


def _stamp(raw: Record) -> datetime | None:
    value = raw.get("SystemModstamp")
    return parse_stamp(str(value)) if value else None


def _unseen(
    page: Sequence[Record],
    mark: Watermark | None,
    floor: datetime,
    recent: list[tuple[str, datetime | None]],
) -> tuple[list[Record], int]:
    """The page without records already passed on at the same stamp; the count skipped.

    Records stamped at or after ``floor`` (the next read's start) are noted in ``recent``.
    """
    fresh: list[Record] = []
    for raw in page:
        record_id, stamp = str(raw["Id"]), _stamp(raw)
        if stamp is not None and stamp >= floor:
            recent.append((record_id, stamp))
        if not already_seen(mark, record_id, stamp):
            fresh.append(raw)
    return fresh, len(page) - len(fresh)


def _is_deleted(raw: Record) -> bool:
    value = raw.get("IsDeleted")
    return value is True or str(value).lower() == "true"


def _to_batch(page: Sequence[Record], convert: Callable[[Record], T | None]) -> Batch[T]:
    """Live records converted; deleted ones (and ones that count for no account) by id."""
    records: list[T] = []
    deleted: list[str] = []
    for raw in page:
        item = None if _is_deleted(raw) else convert(raw)
        if item is None:
            deleted.append(str(raw["Id"]))
        else:
            records.append(item)
    return Batch(records, deleted)
