"""Writing field updates: sObject Collections, packed into Composite requests.

One sObject Collection (``PATCH composite/sobjects``, ``allOrNone: false``) updates up
to 200 records; one Composite request carries up to five collections and Salesforce
counts it as a single API call, so 1,000 records cost one counted call. An org that
refuses the Composite request gets plain collections instead (remembered for the
connector's life). Salesforce answers per record, in request order; each answer
becomes a ``WriteOutcome`` with Salesforce's error code when it failed. Nothing is
reported as written unless Salesforce said so.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC
from typing import Any

import structlog

from agent.core.batching import chunked
from agent.core.ports import FieldUpdate, FieldValue, WriteOutcome
from connectors.common.errors import RetriableError
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.errors import SalesforceFatalError, error_of

__all__ = ["CollectionWriter", "failed_result", "sobject_record", "wire_value"]

_log = structlog.get_logger(__name__)
_REFUSED_STATUSES = frozenset({400, 403, 404, 405, 501})
_RETRY_CODES = frozenset({"UNABLE_TO_LOCK_ROW", "REQUEST_LIMIT_EXCEEDED"})


def wire_value(value: FieldValue) -> Any:
    """A ``FieldValue`` as Salesforce's JSON wants it; None (and an empty set) clear the field."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"cannot write {value!r} to Salesforce")
        return value
    if isinstance(value, tuple):
        return ";".join(value) if value else None
    moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def sobject_record(sobject: str, update: FieldUpdate) -> dict[str, Any]:
    """One record of a collection: type, id and the changed fields only."""
    record: dict[str, Any] = {"attributes": {"type": sobject}, "id": update.record_id}
    record.update((name, wire_value(v)) for name, v in update.values.items())
    return record


def _outcomes(updates: Sequence[FieldUpdate], results: Sequence[Any]) -> list[WriteOutcome]:
    return [_outcome(u.record_id, r) for u, r in zip(updates, results, strict=True)]


def _outcome(record_id: str, result: Mapping[str, Any]) -> WriteOutcome:
    if result.get("success"):
        return WriteOutcome(record_id, ok=True)
    code, message = error_of(result.get("errors") or [])
    return WriteOutcome(record_id, ok=False, error_code=code or "UNKNOWN_ERROR", message=message)


def failed_result(code: str, message: str) -> dict[str, Any]:
    """A per-record result in Salesforce's shape, for records the answer did not cover."""
    return {"success": False, "errors": [{"statusCode": code, "message": message, "fields": []}]}


def _per_record(count: int, body: Any) -> list[Any]:
    if not isinstance(body, list) or len(body) != count:
        return [
            failed_result("UNEXPECTED_RESPONSE", "Salesforce answered no per-record result")
        ] * count
    return list(body)


class CollectionWriter:
    """Sends batches of records for one connector; remembers an org that refuses Composite.

    ``write`` updates (``PATCH``), ``create`` inserts (``POST``): the same packing,
    one result per record in Salesforce's SaveResult shape. The sizes come from the
    settings (``salesforce.collection_size`` and ``collections_per_request``), the one
    place their defaults live.
    """

    def __init__(
        self,
        client: SalesforceClient,
        *,
        collection_size: int,
        collections_per_request: int,
        use_composite: bool = True,
    ) -> None:
        self._client = client
        self.collection_size = collection_size
        self.collections_per_request = collections_per_request if use_composite else 1
        self.composite_refused = not use_composite

    @property
    def max_batch(self) -> int:
        return self.collection_size * self.collections_per_request

    def write(self, sobject: str, updates: Sequence[FieldUpdate]) -> list[WriteOutcome]:
        """Outcomes for ``updates`` in order; at most ``max_batch`` updates per call."""
        records = [sobject_record(sobject, u) for u in updates]
        return _outcomes(updates, self.send("PATCH", records))

    def create(self, records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        """Insert ``records`` (each with ``attributes.type``); SaveResults in order."""
        return self.send("POST", records)

    def send(self, method: str, records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
        """One SaveResult per record, in order; at most ``max_batch`` records per call."""
        if len(records) > self.max_batch:
            raise ValueError(f"{len(records)} records exceed the batch of {self.max_batch}")
        groups = list(chunked(records, self.collection_size))
        if len(groups) > 1 and not self.composite_refused:
            results = self._composite(method, groups)
            if results is not None:
                return [r for group in results for r in group]
        return [r for group in groups for r in self._collection(method, group)]

    def _collection(self, method: str, group: Sequence[Mapping[str, Any]]) -> list[Any]:
        kind = "update" if method == "PATCH" else "create"
        body = self._client.json(
            kind, method, "composite/sobjects", json={"allOrNone": False, "records": list(group)}
        )
        return _per_record(len(group), body)

    def _composite(
        self, method: str, groups: Sequence[Sequence[Mapping[str, Any]]]
    ) -> list[list[Any]] | None:
        """Per-group results, or None when the org refuses Composite (then use collections)."""
        url = f"{self._client.data_path}composite/sobjects"
        request = {
            "allOrNone": False,
            "compositeRequest": [
                {
                    "method": method,
                    "url": url,
                    "referenceId": f"c{i}",
                    "body": {"allOrNone": False, "records": list(g)},
                }
                for i, g in enumerate(groups)
            ],
        }
        kind = "update" if method == "PATCH" else "create"
        try:
            body = self._client.json(kind, "POST", "composite", json=request)
        except SalesforceFatalError as exc:
            if exc.status not in _REFUSED_STATUSES:
                raise
            self._refuse(str(exc))
            return None
        subs = {s.get("referenceId"): s for s in (body or {}).get("compositeResponse", [])}
        answers = [subs.get(f"c{i}", {}) for i in range(len(groups))]
        if all(_refused_sub(a) for a in answers):
            self._refuse(str(answers[0].get("body")))
            return None
        return [self._group(method, g, a) for g, a in zip(groups, answers, strict=True)]

    def _group(
        self, method: str, group: Sequence[Mapping[str, Any]], answer: Mapping[str, Any]
    ) -> list[Any]:
        status = int(answer.get("httpStatusCode", 0))
        if 200 <= status < 300:
            return _per_record(len(group), answer.get("body"))
        code, message = error_of(answer.get("body"))
        if status >= 500 or code in _RETRY_CODES:
            _log.info("salesforce_subrequest_resent", status=status, code=code, records=len(group))
            try:
                return self._collection(method, group)
            except RetriableError as exc:
                return [failed_result(code or f"HTTP_{status}", str(exc))] * len(group)
        return [failed_result(code or f"HTTP_{status}", message or "")] * len(group)

    def _refuse(self, detail: str) -> None:
        self.composite_refused = True
        _log.warning(
            "salesforce_composite_refused", detail=detail[:300], fallback="sobject_collections"
        )


def _refused_sub(answer: Mapping[str, Any]) -> bool:
    """A subrequest rejected as a request (not per record, not for load): Composite refused."""
    status = int(answer.get("httpStatusCode", 0))
    code, _ = error_of(answer.get("body"))
    return status in _REFUSED_STATUSES and code is not None and code not in _RETRY_CODES
