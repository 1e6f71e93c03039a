"""The HubSpot CRM connector: companies and contacts in, batched property updates out.

A read without a cursor lists every record (100 a call, contacts with their companies
inline); a read with one searches for records modified since ``cursor - overlap``
(200 a call; contacts' companies from the associations v4 batch read, 1,000 a call)
and then reports records archived or merged away since then as deleted. The cursor
rides on the last batch of a read, so it is stored only once everything before it is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta
from itertools import chain
from typing import Any, TypeVar

import structlog

from agent.core.batching import chunked
from agent.core.contract import FieldSpec, ObjectKind
from agent.core.models import Account, Contact
from agent.core.ports import Batch, FieldProblem, FieldUpdate, WriteOutcome
from connectors.common.calls import CallCounter
from connectors.common.watermark import Watermark, advance, already_seen, decode, encode
from connectors.hubspot import properties as props
from connectors.hubspot.associations import associated_ids, primary_inline
from connectors.hubspot.cursor import Window, parse_cursor
from connectors.hubspot.mapping import (
    OBJECT_TYPES,
    company_properties,
    contact_properties,
    merged_ids,
    to_account,
    to_contact,
)
from connectors.hubspot.owners import OwnerDirectory
from connectors.hubspot.pages import list_pages, search_pages
from connectors.hubspot.provision import (
    CreateGroup,
    CreateProperty,
    ProvisionPlan,
    ProvisionResult,
    apply_plan,
    plan_provisioning,
)
from connectors.hubspot.records import HsRecord
from connectors.hubspot.session import HubSpotSession
from connectors.hubspot.settings import HubSpotSettings
from connectors.hubspot.surveys import HubSpotSurveySource
from connectors.hubspot.tasks import KEY_PROPERTY, HubSpotTasks
from connectors.hubspot.write import BatchWriter

__all__ = ["HubSpotConnector"]

T = TypeVar("T")
_log = structlog.get_logger(__name__)
#: A page of changed records and the ids that left HubSpot (archived or merged away).
_Change = tuple[Sequence[HsRecord], Sequence[str]]


class HubSpotConnector:
    """``agent.core.ports.CrmConnector`` for HubSpot."""

    name = "hubspot"

    def __init__(
        self, session: HubSpotSession, settings: HubSpotSettings, specs: Sequence[FieldSpec]
    ) -> None:
        self.max_write_batch = settings.write_batch_size
        self._session = session
        self._settings = settings
        self._specs = tuple(specs)
        self._owners = OwnerDirectory(session.transport, session.apis, settings.list_page_size)
        self._writer = BatchWriter(
            session.transport, session.apis, specs, settings.write_batch_size
        )

    def reset_budget(self) -> None:
        """A new job begins: its retry budget is whole again."""
        self._session.transport.policy.start_job()

    @property
    def calls(self) -> CallCounter:
        """API calls made so far, by kind."""
        return self._session.transport.counter

    def task_crm(self) -> HubSpotTasks:
        """The portal's tasks (``agent.core.ports.TaskCrm``), sharing this connection."""
        return HubSpotTasks(
            self._session.transport,
            self._session.apis,
            self._owners,
            batch_size=self._settings.write_batch_size,
            overlap=timedelta(seconds=self._settings.incremental_overlap_s),
            clock=self._session.clock,
        )

    def survey_source(self) -> HubSpotSurveySource | None:
        """The portal's feedback surveys, sharing this connector's limits; None when off."""
        if not self._settings.surveys.enabled:
            return None
        return HubSpotSurveySource(
            apis=self._session.apis,
            transport=self._session.transport,
            settings=self._settings,
            clock=self._session.clock,
        )

    # -- reading -----------------------------------------------------------------

    def read_accounts(self, cursor: str | None) -> Iterator[Batch[Account]]:
        """Every company (``cursor`` None) or those changed since ``cursor``."""
        self._owners.refresh()
        return self._read("account", cursor, self._accounts)

    def read_contacts(self, cursor: str | None) -> Iterator[Batch[Contact]]:
        """Every contact (``cursor`` None) or those changed since ``cursor``."""
        return self._read("contact", cursor, self._contacts)

    def _read(
        self,
        obj: ObjectKind,
        cursor: str | None,
        convert: Callable[[Sequence[HsRecord], bool], list[T]],
    ) -> Iterator[Batch[T]]:
        started = self._session.clock()
        overlap = timedelta(seconds=self._settings.incremental_overlap_s)
        mark = decode(cursor, overlap, parse_cursor)
        floor = started - overlap
        recent: list[tuple[str, datetime | None]] = []
        pending: Batch[T] | None = None
        count = skipped = 0
        for records, deleted in self._changes(obj, mark, started):
            recent.extend((r.id, r.updated_at) for r in records if _on_or_after(r, floor))
            fresh = [r for r in records if not already_seen(mark, r.id, r.updated_at)]
            skipped += len(records) - len(fresh)
            count += len(fresh)
            if not fresh and not deleted:
                continue
            # A full read lists records with their associations inline; a search does not.
            batch = Batch(records=convert(fresh, mark is None), deleted_ids=tuple(deleted))
            if pending is not None:
                yield pending
            pending = batch
        new_cursor = encode(advance(mark, recent, started, overlap))
        _log.info(
            "hubspot_read",
            object=obj,
            records=count,
            skipped=skipped,
            incremental=mark is not None,
        )
        yield Batch(
            records=pending.records if pending else (),
            deleted_ids=pending.deleted_ids if pending else (),
            cursor=new_cursor,
        )

    def _changes(
        self, obj: ObjectKind, mark: Watermark | None, started: datetime
    ) -> Iterator[_Change]:
        if mark is None:
            for page in self._list(obj):
                yield page, [m for r in page for m in merged_ids(r)]
            return
        # Inclusive, up to the read's start (what changes later is read next time).
        span = Window(min(mark.since, started), started)
        seen: set[str] = set()
        for page in self._search(obj, span):
            fresh = [r for r in page if r.id not in seen]
            seen.update(r.id for r in fresh)
            yield fresh, [m for r in fresh for m in merged_ids(r)]
        yield from self._archived(obj, span)

    def _list(self, obj: ObjectKind) -> Iterator[Sequence[HsRecord]]:
        return list_pages(
            self._session.transport,
            self._session.apis,
            OBJECT_TYPES[obj],
            properties=self._properties(obj),
            associations=["companies"] if obj == "contact" else (),
            page_size=self._settings.list_page_size,
        )

    def _search(self, obj: ObjectKind, span: Window) -> Iterator[Sequence[HsRecord]]:
        s = self._settings
        pages = search_pages(
            self._session.transport,
            self._session.apis,
            OBJECT_TYPES[obj],
            date_property=s.company_modified_property
            if obj == "account"
            else s.contact_modified_property,
            window=span,
            properties=self._properties(obj),
            page_size=s.search_page_size,
        )
        if obj == "account":
            return pages
        # Searches return no associations: gather contacts so each lookup fills a batch.
        return chunked(chain.from_iterable(pages), s.association_batch_size)

    def _archived(self, obj: ObjectKind, span: Window) -> Iterator[_Change]:
        pages = list_pages(
            self._session.transport,
            self._session.apis,
            OBJECT_TYPES[obj],
            properties=["hs_object_id"],
            archived=True,
            page_size=self._settings.list_page_size,
        )
        for page in pages:
            gone = [r.id for r in page if r.archived_at is None or r.archived_at >= span.low]
            if gone:
                yield (), gone

    def _properties(self, obj: ObjectKind) -> list[str]:
        if obj == "account":
            return company_properties(self._settings, self._specs)
        return contact_properties(self._settings, self._specs)

    def _accounts(self, records: Sequence[HsRecord], _inline: bool) -> list[Account]:
        return [
            to_account(
                r, self._settings, self._specs, self._owners.email(r.prop("hubspot_owner_id"))
            )
            for r in records
        ]

    def _contacts(self, records: Sequence[HsRecord], inline: bool) -> list[Contact]:
        if inline or not records:
            companies = {r.id: primary_inline(r.associations.get("companies", ())) for r in records}
        else:
            companies = dict(
                associated_ids(
                    self._session.transport,
                    self._session.apis,
                    "contacts",
                    "companies",
                    [r.id for r in records],
                    batch_size=self._settings.association_batch_size,
                )
            )
        return [to_contact(r, self._settings, self._specs, companies.get(r.id)) for r in records]

    # -- schema and writing -----------------------------------------------------

    def check_fields(self, specs: Sequence[FieldSpec]) -> list[FieldProblem]:
        """Mapped properties HubSpot lacks or cannot take, and read properties it lacks."""
        schemas = self._schemas()
        problems = props.field_problems(specs, schemas) + props.read_problems(
            self._settings, schemas
        )
        for problem in problems:
            _log.warning(
                "hubspot_field_problem",
                object=problem.object,
                field=problem.field,
                problem=problem.problem,
                fix=problem.fix,
            )
        return problems

    def plan_provisioning(
        self, specs: Sequence[FieldSpec], *, tasks: bool = False
    ) -> ProvisionPlan:
        """What ``ax-agent crm provision hubspot`` would create (reads only); with
        ``tasks``, also the tasks property ``ax_alert_key``."""
        objects = list(dict.fromkeys(s.object for s in specs))
        schemas = self._schemas(objects)
        groups = {
            obj: props.fetch_groups(self._session.transport, self._session.apis, OBJECT_TYPES[obj])
            for obj in objects
        }
        plan = plan_provisioning(
            specs,
            schemas,
            groups,
            group=self._settings.property_group,
            group_label=self._settings.property_group_label,
        )
        return self._task_key_plan(plan) if tasks else plan

    def _task_key_plan(self, plan: ProvisionPlan) -> ProvisionPlan:
        transport, apis = self._session.transport, self._session.apis
        if KEY_PROPERTY in props.fetch_schema(transport, apis, "tasks"):
            return plan
        group = self._settings.property_group
        actions: list[Any] = []
        if group not in props.fetch_groups(transport, apis, "tasks"):
            actions.append(CreateGroup("tasks", group, self._settings.property_group_label))
        definition = {
            "name": KEY_PROPERTY,
            "label": "AX alert key",
            "type": "string",
            "fieldType": "text",
            "groupName": group,
            "description": "ax-agent's alert key of the task, so it is created once.",
            "formField": False,
        }
        actions.append(CreateProperty("tasks", definition))
        return ProvisionPlan((*plan.actions, *actions), plan.conflicts)

    def apply_provisioning(self, plan: ProvisionPlan) -> ProvisionResult:
        """Create the group, properties and options the plan lists."""
        return apply_plan(self._session.transport, self._session.apis, plan)

    def write(self, obj: ObjectKind, updates: Sequence[FieldUpdate]) -> list[WriteOutcome]:
        """One batch update call (at most ``max_write_batch`` records); one outcome each."""
        return self._writer.write(obj, updates)

    def preview(self, obj: ObjectKind, updates: Sequence[FieldUpdate]) -> dict[str, Any]:
        """The request ``write`` would send, without sending it (for ``--dry-run``)."""
        return self._writer.preview(obj, updates)

    def _schemas(
        self, objects: Sequence[ObjectKind] = ("account", "contact")
    ) -> dict[ObjectKind, props.Schema]:
        return {
            obj: props.fetch_schema(self._session.transport, self._session.apis, OBJECT_TYPES[obj])
            for obj in objects
        }


def _on_or_after(record: HsRecord, floor: datetime) -> bool:
    return record.updated_at is not None and record.updated_at >= floor
