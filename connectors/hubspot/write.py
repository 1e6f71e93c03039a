"""Batch write-back: ``POST /crm/v3/objects/{type}/batch/update``, 100 records a call.

Values are formatted the way HubSpot stores them (``values.format_value``). A 200
confirms every record; a 207 multi-status confirms the records in ``results`` and
fails those its ``errors`` name, with HubSpot's error category as the code. HubSpot
rejects a whole batch with a 400 when one value is invalid, so such a batch is split
in halves until the bad records stand alone: the good ones still get written and the
bad ones are reported, each with its own reason (a missing or read-only property is
the same for every record and stops the write instead). A record HubSpot did not confirm is
never reported as written.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import structlog

from agent.core.contract import FieldKind, FieldSpec, ObjectKind
from agent.core.ports import FieldUpdate, WriteOutcome
from connectors.hubspot.client import HubSpotApis
from connectors.hubspot.errors import HubSpotRequestError
from connectors.hubspot.mapping import OBJECT_TYPES
from connectors.hubspot.records import results
from connectors.hubspot.transport import Transport
from connectors.hubspot.values import format_value

__all__ = ["BatchWriter"]

_log = structlog.get_logger(__name__)
_SPLITTABLE = frozenset({400, 409, 422})
#: A property that does not exist or cannot be written fails every record alike: splitting
#: the batch would only repeat the error (``check_fields`` reports these before writing).
_SCHEMA_ERRORS = ("PROPERTY_DOESNT_EXIST", "READ_ONLY_VALUE")


class BatchWriter:
    """Formats, sends and reads back one batch of field updates."""

    def __init__(
        self, transport: Transport, apis: HubSpotApis, specs: Sequence[FieldSpec], limit: int
    ) -> None:
        self._transport = transport
        self._apis = apis
        self._limit = limit
        self._kinds: dict[tuple[ObjectKind, str], FieldKind] = {
            (s.object, s.hubspot): s.kind for s in specs
        }

    def inputs(self, obj: ObjectKind, updates: Sequence[FieldUpdate]) -> list[dict[str, Any]]:
        """The ``inputs`` of the batch request: one per record, property values as strings."""
        merged: dict[str, dict[str, str]] = {}
        for update in updates:
            props = merged.setdefault(update.record_id, {})
            for name, value in update.values.items():
                props[name] = format_value(value, self._kinds.get((obj, name)))
        return [{"id": record_id, "properties": props} for record_id, props in merged.items()]

    def preview(self, obj: ObjectKind, updates: Sequence[FieldUpdate]) -> dict[str, Any]:
        """The request ``write`` would send, for ``--dry-run``: method, path and body."""
        return {
            "method": "POST",
            "path": f"/crm/v3/objects/{OBJECT_TYPES[obj]}/batch/update",
            "body": {"inputs": self.inputs(obj, updates)},
        }

    def write(self, obj: ObjectKind, updates: Sequence[FieldUpdate]) -> list[WriteOutcome]:
        """One outcome per update, in order; at most ``limit`` updates per call."""
        if len(updates) > self._limit:
            raise ValueError(f"at most {self._limit} updates per write, got {len(updates)}")
        if not updates:
            return []
        by_id = self._send(obj, updates)
        return [by_id[u.record_id] for u in updates]

    def _send(self, obj: ObjectKind, updates: Sequence[FieldUpdate]) -> dict[str, WriteOutcome]:
        object_type = OBJECT_TYPES[obj]
        request = {"inputs": self.inputs(obj, updates)}
        try:
            response = self._transport.call(
                f"{object_type}.update",
                self._apis.objects_batch.update,
                object_type,
                request,
            )
        except HubSpotRequestError as err:
            if err.status not in _SPLITTABLE or any(m in str(err) for m in _SCHEMA_ERRORS):
                raise
            return self._isolate(obj, updates, err)
        return _outcomes({u.record_id for u in updates}, response)

    def _isolate(
        self, obj: ObjectKind, updates: Sequence[FieldUpdate], err: HubSpotRequestError
    ) -> dict[str, WriteOutcome]:
        ids = list(dict.fromkeys(u.record_id for u in updates))
        if len(ids) == 1:
            _log.warning("hubspot_write_rejected", record=ids[0], status=err.status, error=str(err))
            code = err.category or f"HTTP_{err.status}"
            return {ids[0]: WriteOutcome(ids[0], ok=False, error_code=code, message=str(err))}
        half = set(ids[: len(ids) // 2])
        first = [u for u in updates if u.record_id in half]
        second = [u for u in updates if u.record_id not in half]
        return {**self._send(obj, first), **self._send(obj, second)}


def _outcomes(ids: set[str], response: Mapping[str, Any]) -> dict[str, WriteOutcome]:
    confirmed = {str(r["id"]) for r in results(response)} & ids
    outcomes = {i: WriteOutcome(i, ok=True) for i in confirmed}
    for error in response.get("errors") or ():
        named = _named_ids(error.get("context") or {}, ids) or (ids - set(outcomes))
        for record_id in named - confirmed:
            outcomes[record_id] = WriteOutcome(
                record_id,
                ok=False,
                error_code=error.get("category"),
                message=error.get("message"),
            )
    for record_id in ids - set(outcomes):
        outcomes[record_id] = WriteOutcome(
            record_id,
            ok=False,
            error_code="NOT_CONFIRMED",
            message="HubSpot's response neither confirmed nor rejected this record",
        )
    return outcomes


def _named_ids(context: Mapping[str, Iterable[str]], ids: set[str]) -> set[str]:
    return {str(v) for values in context.values() for v in values or () if str(v) in ids}
