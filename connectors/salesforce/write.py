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

__all__ = ["CollectionWriter", "sobject_record", "wire_value"]

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


def _outcomes(updates: Sequence[FieldUpdate], results: Any) -> list[WriteOutcome]:
    if not isinstance(results, list) or len(results) != len(updates):
        return _all_failed(
            updates, "UNEXPECTED_RESPONSE", "Salesforce answered no per-record result"
        )
    return [_outcome(u.record_id, r) for u, r in zip(updates, results, strict=True)]


def _outcome(record_id: str, result: Mapping[str, Any]) -> WriteOutcome:
    if result.get("success"):
        return WriteOutcome(record_id, ok=True)
    code, message = error_of(result.get("errors") or [])
    return WriteOutcome(record_id, ok=False, error_code=code or "UNKNOWN_ERROR", message=message)


def _all_failed(updates: Sequence[FieldUpdate], code: str, message: str) -> list[WriteOutcome]:
    return [WriteOutcome(u.record_id, ok=False, error_code=code, message=message) for u in updates]


class CollectionWriter:
    """Sends batches of updates for one connector; remembers an org that refuses Composite.

    The sizes come from the settings (``salesforce.collection_size`` and
    ``collections_per_request``), the one place their defaults live.
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
        if len(updates) > self.max_batch:
            raise ValueError(f"{len(updates)} updates exceed the batch of {self.max_batch}")
        groups = list(chunked(updates, self.collection_size))
        if len(groups) > 1 and not self.composite_refused:
            results = self._composite(sobject, groups)
            if results is not None:
                return [o for r in results for o in r]
        return [o for group in groups for o in self._collection(sobject, group)]

    def _body(self, sobject: str, group: Sequence[FieldUpdate]) -> dict[str, Any]:
        return {"allOrNone": False, "records": [sobject_record(sobject, u) for u in group]}

    def _collection(self, sobject: str, group: Sequence[FieldUpdate]) -> list[WriteOutcome]:
        body = self._client.json(
            "update", "PATCH", "composite/sobjects", json=self._body(sobject, group)
        )
        return _outcomes(group, body)

    def _composite(
        self, sobject: str, groups: Sequence[Sequence[FieldUpdate]]
    ) -> list[list[WriteOutcome]] | None:
        """Per-group outcomes, or None when the org refuses Composite (then use collections)."""
        url = f"{self._client.data_path}composite/sobjects"
        request = {
            "allOrNone": False,
            "compositeRequest": [
                {
                    "method": "PATCH",
                    "url": url,
                    "referenceId": f"c{i}",
                    "body": self._body(sobject, g),
                }
                for i, g in enumerate(groups)
            ],
        }
        try:
            body = self._client.json("update", "POST", "composite", json=request)
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
        return [self._group_outcomes(sobject, g, a) for g, a in zip(groups, answers, strict=True)]

    def _group_outcomes(
        self, sobject: str, group: Sequence[FieldUpdate], answer: Mapping[str, Any]
    ) -> list[WriteOutcome]:
        status = int(answer.get("httpStatusCode", 0))
        if 200 <= status < 300:
            return _outcomes(group, answer.get("body"))
        code, message = error_of(answer.get("body"))
        if status >= 500 or code in _RETRY_CODES:
            _log.info("salesforce_subrequest_resent", status=status, code=code, records=len(group))
            try:
                return self._collection(sobject, group)
            except RetriableError as exc:
                return _all_failed(group, code or f"HTTP_{status}", str(exc))
        return _all_failed(group, code or f"HTTP_{status}", message)

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
