"""A stateful fake HubSpot portal that answers at the HTTP layer.

``FakePortal.handle(method, path, query, headers, body)`` serves the CRM endpoints the
connector uses with HubSpot's documented payloads (see ``wire``): list pages with
``paging.next.after``, search with ``total`` and the 10,000-result cap, batch
update/read with 207 multi-status errors, associations v4, owners, properties and
property groups. Every request is recorded and validated; a request that breaks the
documented contract is answered 400 and listed in ``violations``. Faults (429 with
Retry-After, 5xx) are scripted with ``fail``. Adapters serve it through
pytest-httpserver (tests) or the standard library's HTTP server (benchmarks).
"""

from __future__ import annotations

import bisect
import json
import re
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from tests.hubspot import wire
from tests.hubspot.fakeschema import SchemaRoutes
from tests.hubspot.fakestate import BadRequest, Fault, Record, Recorded, Store, matches, sort_key

Reply = tuple[int, dict[str, str], Any]
MODIFIED = {
    "companies": "hs_lastmodifieddate",
    "contacts": "lastmodifieddate",
    "tasks": "hs_lastmodifieddate",
    "feedback_submissions": "hs_lastmodifieddate",
}
_LIST_PARAMS = {"limit", "after", "properties", "propertiesWithHistory", "associations", "archived"}
_RATE_HEADERS = {
    "X-HubSpot-RateLimit-Max": "100",
    "X-HubSpot-RateLimit-Remaining": "99",
    "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
    "X-HubSpot-RateLimit-Daily": "250000",
    "X-HubSpot-RateLimit-Daily-Remaining": "249000",
}
PRIMARY = [
    {"category": "HUBSPOT_DEFINED", "typeId": 1, "label": "Primary"},
    {"category": "HUBSPOT_DEFINED", "typeId": 279, "label": None},
]
UNLABELED = [{"category": "HUBSPOT_DEFINED", "typeId": 279, "label": None}]
#: HubSpot-defined association types from a task: 192 to a company, 204 to a contact.
TASK_ASSOCIATIONS = {192: "companies", 204: "contacts"}
SUBMISSION_CONTACT = [{"category": "HUBSPOT_DEFINED", "typeId": 1135, "label": None}]


class FakePortal(SchemaRoutes):
    """In-memory HubSpot: seed it, point the client at it, inspect what was asked."""

    def __init__(self, token: str = "pat-na1-test-token", start: datetime | None = None) -> None:
        super().__init__()
        self.token = token
        self.now_ms = int(
            (start or datetime.fromisoformat("2026-03-01T12:00:00+00:00")).timestamp() * 1000
        )
        self.stores = {t: Store() for t in MODIFIED}
        self.links: dict[tuple[str, str], dict[str, list[tuple[str, bool]]]] = {}
        self.requests: list[Recorded] = []
        self.violations: list[str] = []
        self.faults: list[Fault] = []
        #: Ids the search index has not caught up with yet (search results lag behind writes).
        self.unindexed: set[str] = set()
        self.max_search_offset = 0
        self._next_id = 100
        self._lock = threading.RLock()
        self._routes: list[tuple[str, re.Pattern[str], Callable[..., Reply]]] = [
            ("GET", re.compile(r"/crm/v3/objects/(?P<t>\w+)"), self._list),
            ("POST", re.compile(r"/crm/v3/objects/(?P<t>\w+)/search"), self._search),
            ("POST", re.compile(r"/crm/v3/objects/(?P<t>\w+)/batch/update"), self._update),
            ("POST", re.compile(r"/crm/v3/objects/(?P<t>\w+)/batch/create"), self._create),
            ("POST", re.compile(r"/crm/v3/objects/(?P<t>\w+)/batch/read"), self._read),
            (
                "POST",
                re.compile(r"/crm/v4/associations/(?P<f>\w+)/(?P<t>\w+)/batch/read"),
                self._links,
            ),
            *self.schema_routes(),
        ]

    # -- seeding and inspection ----------------------------------------------------

    def tick(self, ms: int = 1) -> int:
        self.now_ms += ms
        return self.now_ms

    def new_id(self) -> str:
        self._next_id += 1
        return str(self._next_id)

    def add(
        self, object_type: str, properties: dict[str, str | None], record_id: str | None = None
    ) -> str:
        record_id = record_id or self.new_id()
        now = self.tick()
        props = dict(properties)
        props.setdefault("createdate", wire.iso(now))
        props[MODIFIED[object_type]] = props["hs_lastmodifieddate"] = wire.iso(now)
        store = self.stores[object_type]
        store.live[record_id] = Record(record_id, props, now, now)
        store.changed()
        return record_id

    def add_company(self, record_id: str | None = None, **properties: str | None) -> str:
        return self.add("companies", properties, record_id)

    def add_contact(
        self,
        record_id: str | None = None,
        *,
        company: str | None = None,
        others: Iterable[str] = (),
        **properties: str | None,
    ) -> str:
        cid = self.add("contacts", properties, record_id)
        targets = ([(company, True)] if company else []) + [(o, False) for o in others]
        if targets:
            self.links.setdefault(("contacts", "companies"), {})[cid] = targets
        return cid

    def add_submission(self, contact: str | None = None, **properties: str | None) -> str:
        sid = self.add("feedback_submissions", properties)
        if contact:
            self.links.setdefault(("feedback_submissions", "contacts"), {})[sid] = [
                (contact, False)
            ]
        return sid

    def modify(self, object_type: str, record_id: str, **properties: str | None) -> None:
        record = self.stores[object_type].live[record_id]
        record.properties.update(properties)
        self._touch(object_type, record)
        self.derive(object_type, record)

    def archive(self, object_type: str, record_id: str) -> None:
        store = self.stores[object_type]
        record = store.live.pop(record_id)
        record.archived_ms = self.tick()
        store.archived[record_id] = record
        store.changed()

    def merge(self, object_type: str, winner: str, loser: str) -> None:
        store = self.stores[object_type]
        store.live.pop(loser)
        store.changed()
        record = store.live[winner]
        merged = [m for m in (record.properties.get("hs_merged_object_ids") or "").split(";") if m]
        self.modify(object_type, winner, hs_merged_object_ids=";".join([*merged, loser]))

    def value(self, object_type: str, record_id: str, name: str) -> str | None:
        return self.stores[object_type].live[record_id].properties.get(name)

    def fail(
        self,
        method: str,
        path: str,
        status: int,
        *,
        headers: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        times: int = 1,
        delay: float = 0.0,
    ) -> None:
        """The next ``times`` matching requests get ``status`` instead of an answer."""
        default = wire.error(
            "RATE_LIMITS" if status == 429 else "INTERNAL_ERROR", f"scripted {status}"
        )
        fault = Fault(
            method, re.compile(path), status, headers or {}, body or default, times, delay
        )
        self.faults.append(fault)

    def calls(self, method: str | None = None, path: str | None = None) -> list[Recorded]:
        pattern = re.compile(path) if path else None
        return [
            r
            for r in self.requests
            if (method is None or r.method == method)
            and (pattern is None or pattern.fullmatch(r.path))
        ]

    # -- dispatch ------------------------------------------------------------------

    def handle(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
    ) -> Reply:
        with self._lock:
            parsed = json.loads(body) if body else None
            self.requests.append(Recorded(method, path, query, parsed))
            if headers.get("authorization") != f"Bearer {self.token}":
                return (
                    401,
                    {},
                    wire.error("INVALID_AUTHENTICATION", "Authentication credentials not found."),
                )
            fault = self._fault(method, path)
        if fault is not None:
            time.sleep(fault.delay)
            return fault.status, dict(fault.headers), fault.body
        with self._lock:
            for route_method, pattern, handler in self._routes:
                match = pattern.fullmatch(path)
                if match and route_method == method:
                    return self._run(handler, match.groupdict(), query, parsed, path)
            self.violations.append(f"{method} {path}: no such HubSpot endpoint")
            return 404, {}, wire.error("OBJECT_NOT_FOUND", f"no endpoint {method} {path}")

    def _run(
        self,
        handler: Callable[..., Reply],
        params: dict[str, str],
        query: dict[str, list[str]],
        body: Any,
        path: str,
    ) -> Reply:
        try:
            status, headers, payload = handler(query=query, body=body, **params)
        except BadRequest as bad:
            return bad.status, {}, bad.body
        if "/search" not in path:
            headers = {**_RATE_HEADERS, **headers}
        return status, headers, payload

    def _fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if fault.times > 0 and fault.method == method and fault.path.fullmatch(path):
                fault.times -= 1
                return fault
        return None

    def violation(self, message: str) -> BadRequest:
        self.violations.append(message)
        return BadRequest(400, wire.error("VALIDATION_ERROR", message))

    def parse(self, model: type[BaseModel], body: Any, where: str) -> Any:
        try:
            return model.model_validate(body)
        except ValidationError as exc:
            raise self.violation(f"{where}: body does not match {model.__name__}: {exc}") from None

    def _store(self, object_type: str) -> Store:
        if object_type not in self.stores:
            raise self.violation(f"unknown object type {object_type}")
        return self.stores[object_type]

    # -- objects -------------------------------------------------------------------

    def _list(self, *, t: str, query: dict[str, list[str]], body: Any) -> Reply:
        unknown = set(query) - _LIST_PARAMS
        if unknown:
            raise self.violation(f"GET /crm/v3/objects/{t}: unknown parameters {sorted(unknown)}")
        limit = _int(query, "limit", 10)
        if not 1 <= limit <= 100:
            raise self.violation(f"list limit {limit} outside 1..100")
        archived = _flag(query, "archived")
        store = self._store(t)
        order = store.ordered(archived)
        after = _first(query, "after")
        start = bisect.bisect_left(order, int(after)) if after else 0
        ids = order[start : start + limit]
        source = store.archived if archived else store.live
        props = _names(query, "properties")
        assoc = _names(query, "associations")
        results = [self.render(t, source[str(i)], props, assoc) for i in ids]
        payload: dict[str, Any] = {"results": results}
        if start + limit < len(order):
            nxt = str(order[start + limit])
            payload["paging"] = {"next": {"after": nxt, "link": f"?after={nxt}"}}
        return 200, {}, payload

    def render(
        self, object_type: str, record: Record, props: list[str], assoc: Iterable[str] = ()
    ) -> dict[str, Any]:
        shown = {
            "hs_object_id": record.id,
            "createdate": record.properties.get("createdate"),
            MODIFIED[object_type]: record.properties.get(MODIFIED[object_type]),
        }
        shown.update({p: record.properties.get(p) for p in props})
        out: dict[str, Any] = {
            "id": record.id,
            "properties": shown,
            "createdAt": wire.iso(record.created_ms),
            "updatedAt": wire.iso(record.updated_ms),
            "archived": record.archived_ms is not None,
        }
        if record.archived_ms is not None:
            out["archivedAt"] = wire.iso(record.archived_ms)
        for to_type in assoc:
            refs = self._inline(object_type, to_type, record.id)
            if refs:
                out.setdefault("associations", {})[to_type] = {"results": refs}
        return out

    def _inline(self, from_type: str, to_type: str, record_id: str) -> list[dict[str, str]]:
        singular = {"contacts": "contact", "companies": "company"}
        name = f"{singular.get(from_type, from_type)}_to_{singular.get(to_type, to_type)}"
        refs: list[dict[str, str]] = []
        for target, primary in self.links.get((from_type, to_type), {}).get(record_id, []):
            if primary:
                refs.append({"id": target, "type": name})
            refs.append({"id": target, "type": f"{name}_unlabeled"})
        return refs

    def _search(self, *, t: str, query: dict[str, list[str]], body: Any) -> Reply:
        request = self.parse(
            wire.PublicObjectSearchRequest, body, f"POST /crm/v3/objects/{t}/search"
        )
        if not request.after.isdigit():
            raise self.violation(f"search after {request.after!r} is not an offset")
        offset = int(request.after)
        self.max_search_offset = max(self.max_search_offset, offset)
        if offset + request.limit > 10_000:
            raise BadRequest(400, wire.error("VALIDATION_ERROR", "paging past 10,000 results"))
        visible = [r for r in self._store(t).live.values() if r.id not in self.unindexed]
        hits = [r for r in visible if matches(r, request.filterGroups)]
        hits.sort(key=sort_key(request.sorts))
        page = hits[offset : offset + request.limit]
        payload: dict[str, Any] = {
            "total": len(hits),
            "results": [self.render(t, r, request.properties) for r in page],
        }
        if offset + request.limit < len(hits):
            nxt = str(offset + request.limit)
            payload["paging"] = {"next": {"after": nxt, "link": f"?after={nxt}"}}
        return 200, {}, payload

    def _update(self, *, t: str, query: dict[str, list[str]], body: Any) -> Reply:
        request = self.parse(wire.BatchInputSimplePublicObjectBatchInput, body, f"batch update {t}")
        ids = [i.id for i in request.inputs]
        if len(ids) > 100:
            raise self.violation(f"batch update of {len(ids)} inputs (at most 100)")
        if len(set(ids)) != len(ids):
            raise BadRequest(
                400, wire.error("VALIDATION_ERROR", "Duplicate IDs found in batch input")
            )
        problems = [p for i in request.inputs for p in self.invalid_values(t, i.properties)]
        if problems:
            message = "Property values were not valid: " + json.dumps(problems)
            return 400, {}, wire.error("VALIDATION_ERROR", message)
        store = self._store(t)
        results, missing = [], []
        for item in request.inputs:
            record = store.live.get(item.id)
            if record is None:
                missing.append(item.id)
                continue
            record.properties.update({k: (v or None) for k, v in item.properties.items()})
            self._touch(t, record)
            self.derive(t, record)
            results.append(self.render(t, record, list(item.properties)))
        return self._batch(results, missing, t)

    def _create(self, *, t: str, query: dict[str, list[str]], body: Any) -> Reply:
        """Batch create: all or nothing (one invalid input fails the batch with a 400)."""
        request = self.parse(
            wire.BatchInputSimplePublicObjectInputForCreate, body, f"batch create {t}"
        )
        if len(request.inputs) > 100:
            raise self.violation(f"batch create of {len(request.inputs)} inputs (at most 100)")
        problems = [p for i in request.inputs for p in self.invalid_values(t, i.properties)]
        problems += [p for i in request.inputs for p in self._bad_links(t, i.associations)]
        if problems:
            message = "Property values were not valid: " + json.dumps(problems)
            return 400, {}, wire.error("VALIDATION_ERROR", message)
        results = []
        for item in request.inputs:
            record_id = self.add(t, {k: (v or None) for k, v in item.properties.items()})
            record = self.stores[t].live[record_id]
            self.derive(t, record)
            for link in item.associations:
                to_type = TASK_ASSOCIATIONS[link.types[0].associationTypeId]
                self.links.setdefault((t, to_type), {}).setdefault(record_id, []).append(
                    (link.to.id, False)
                )
            results.append(self.render(t, record, list(item.properties)))
        return 201, {}, wire.batch_response(results, [], self.now_ms)

    def _bad_links(
        self, object_type: str, links: list[wire.PublicAssociationsForObject]
    ) -> list[str]:
        problems = []
        for link in links:
            for spec in link.types:
                to_type = TASK_ASSOCIATIONS.get(spec.associationTypeId)
                if object_type != "tasks" or to_type is None:
                    problems.append(f"association type {spec.associationTypeId} from {object_type}")
                elif link.to.id not in self.stores[to_type].live:
                    problems.append(f"{to_type} {link.to.id} does not exist")
        return problems

    def derive(self, object_type: str, record: Record) -> None:
        """What HubSpot computes: a completed task's completion date."""
        if object_type != "tasks":
            return
        if record.properties.get("hs_task_status") == "COMPLETED":
            if not record.properties.get("hs_task_completion_date"):
                record.properties["hs_task_completion_date"] = wire.iso(self.now_ms)
        else:
            record.properties["hs_task_completion_date"] = None

    def _read(self, *, t: str, query: dict[str, list[str]], body: Any) -> Reply:
        request = self.parse(wire.BatchReadInputSimplePublicObjectId, body, f"batch read {t}")
        if len(request.inputs) > 100:
            raise self.violation(f"batch read of {len(request.inputs)} inputs (at most 100)")
        store = self._store(t)
        found = [store.live[i.id] for i in request.inputs if i.id in store.live]
        missing = [i.id for i in request.inputs if i.id not in store.live]
        return self._batch([self.render(t, r, request.properties) for r in found], missing, t)

    def _batch(self, results: list[Any], missing: list[str], object_type: str) -> Reply:
        errors = (
            [
                wire.standard_error(
                    "OBJECT_NOT_FOUND",
                    f"Could not get some {object_type} objects, they may be deleted or not exist.",
                    {"ids": missing},
                )
            ]
            if missing
            else []
        )
        return (207 if errors else 200), {}, wire.batch_response(results, errors, self.now_ms)

    def _links(self, *, f: str, t: str, query: dict[str, list[str]], body: Any) -> Reply:
        request = self.parse(
            wire.BatchInputPublicFetchAssociationsBatchRequest, body, f"associations {f}->{t}"
        )
        table = self.links.get((f, t), {})
        types = SUBMISSION_CONTACT if f == "feedback_submissions" else None
        results, errors = [], []
        for item in request.inputs:
            targets = table.get(item.id, [])
            if not targets:
                errors.append(
                    wire.standard_error(
                        "OBJECT_NOT_FOUND",
                        f"No {t} is associated with {f} {item.id}.",
                        {"fromObjectId": [item.id]},
                    )
                )
                continue
            to = [
                {
                    "toObjectId": target,
                    "associationTypes": types or (PRIMARY if primary else UNLABELED),
                }
                for target, primary in targets
            ]
            results.append({"from": {"id": item.id}, "to": to})
        return (207 if errors else 200), {}, wire.batch_response(results, errors, self.now_ms)

    def _touch(self, object_type: str, record: Record) -> None:
        record.updated_ms = self.tick()
        stamp = wire.iso(record.updated_ms)
        record.properties[MODIFIED[object_type]] = record.properties["hs_lastmodifieddate"] = stamp


# -- query helpers -------------------------------------------------------------------


def _first(query: dict[str, list[str]], name: str) -> str | None:
    values = query.get(name)
    return values[0] if values else None


def _int(query: dict[str, list[str]], name: str, default: int) -> int:
    value = _first(query, name)
    return int(value) if value is not None else default


def _flag(query: dict[str, list[str]], name: str) -> bool:
    value = (_first(query, name) or "false").lower()
    if value not in {"true", "false"}:
        raise BadRequest(400, wire.error("VALIDATION_ERROR", f"{name}={value} is not a boolean"))
    return value == "true"


def _names(query: dict[str, list[str]], name: str) -> list[str]:
    return [n for v in query.get(name, []) for n in v.split(",") if n]
