"""How domain values become JSON columns and come back unchanged.

Mirror payloads must round-trip every field of Account and Contact exactly, and a
CRM's current values may hold instants and multi-select tuples that JSON has no
type for; those are tagged (``{"$datetime": …}``, ``{"$tuple": […]}``). Values the
write-back step remembers are plain JSON instead (ISO strings, lists), because they
are compared with what the planner would write, not rebuilt into Python objects.
"""

from __future__ import annotations

import hashlib
import json
import sys
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from agent.core.models import NO_VALUES, SHARED_LENGTH, Account, Contact, Response, shared_text
from agent.core.ports import FieldValue

__all__ = [
    "JsonValue",
    "account_from_payload",
    "account_payload",
    "contact_from_payload",
    "contact_payload",
    "crm_values_from_payload",
    "response_hash",
    "to_json_value",
    "utc_iso",
    "written_stamp",
]

JsonValue = None | bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"]

_DATETIME = "$datetime"
_DATE = "$date"
_TUPLE = "$tuple"
_TAGS = frozenset({_DATETIME, _DATE, _TUPLE})
# One encoder, built once: json.dumps with options builds a new one per call.
_CANONICAL = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def utc_iso(value: datetime) -> str:
    """An instant as ISO 8601 in UTC (a naive value is read as UTC)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


def written_stamp(value: datetime) -> str:
    """An instant as fixed-width UTC text (``2024-05-01T09:30:00.000000Z``), so that two
    stamps compare as text exactly as their instants do (a naive value is read as UTC).
    """
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.isoformat(timespec="microseconds") + "Z"


def to_json_value(value: FieldValue) -> JsonValue:
    """A written field value as plain JSON: instants as UTC ISO strings, tuples as lists."""
    if isinstance(value, datetime):
        return utc_iso(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def account_payload(account: Account) -> dict[str, Any]:
    return {
        "name": account.name,
        "domains": list(account.domains),
        "revenue": account.revenue,
        "revenue_potential": account.revenue_potential,
        "owner_email": account.owner_email,
        "attributes": dict(account.attributes),
        "crm_values": _tag_mapping(account.crm_values),
    }


def account_from_payload(record_id: str, payload: Mapping[str, Any]) -> Account:
    return Account(
        id=record_id,
        name=payload["name"],
        domains=tuple(payload["domains"]),
        revenue=payload["revenue"],
        revenue_potential=payload["revenue_potential"],
        owner_email=payload["owner_email"],
        attributes=dict(payload["attributes"]),
        crm_values=_untag_mapping(payload["crm_values"]),
    )


def contact_payload(contact: Contact) -> dict[str, Any]:
    return {
        "account_id": contact.account_id,
        "email": contact.email,
        "name": contact.name,
        "title": contact.title,
        "crm_tier": contact.crm_tier,
        "crm_values": _tag_mapping(contact.crm_values),
    }


def contact_from_payload(record_id: str, payload: Mapping[str, Any]) -> Contact:
    return Contact(
        id=record_id,
        account_id=shared_text(payload["account_id"]),
        # shared with the stored answers of the same respondent (``ops_responses``)
        email=None if payload["email"] is None else sys.intern(payload["email"]),
        name=payload["name"],
        title=shared_text(payload["title"]),
        crm_tier=shared_text(payload["crm_tier"]),
        crm_values=_untag_mapping(payload["crm_values"]),
    )


def response_hash(response: Response) -> str:
    """SHA-256 of a response's content (not its source or id), instants compared in UTC.

    The hash is stored with each response and compared with a repeat's, so its bytes
    never change: the canonical JSON of ``[email, score, submitted_at, driver, comment,
    account_hint, loop_closed_at]`` (instants as ``utc_iso``). The usual response (text
    or null fields, an int score, instants in UTC) is written out directly, each text
    escaped by the very function the JSON encoder uses, which takes less than half the
    time of encoding a list (a million responses on a first ingest); anything else
    goes through the encoder (``_encoded_content``), and a test compares the two.
    """
    submitted, closed, score = response.submitted_at, response.loop_closed_at, response.score
    if type(score) is int and submitted.tzinfo is UTC and (closed is None or closed.tzinfo is UTC):
        email, driver = response.email, response.driver
        comment, hint = response.comment, response.account_hint
        try:
            canonical = (
                f"[{_NULL if email is None else _json_text(email)},{score},"
                f"{_quoted(submitted.isoformat())},"
                f"{_NULL if driver is None else _json_text(driver)},"
                f"{_NULL if comment is None else _json_text(comment)},"
                f"{_NULL if hint is None else _json_text(hint)},"
                f"{_NULL if closed is None else _quoted(closed.isoformat())}]"
            )
        except TypeError:  # a field that is not text: the encoder says what it makes of it
            canonical = _encoded_content(response)
    else:
        canonical = _encoded_content(response)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


_NULL = "null"
#: What the canonical encoder writes for a text (quoted, escaped; ``ensure_ascii=False``).
_json_text = json.encoder.encode_basestring


def _quoted(iso: str) -> str:
    """An ISO instant as a JSON string (its characters need no escape)."""
    return f'"{iso}"'


def _encoded_content(response: Response) -> str:
    """The canonical JSON ``response_hash`` hashes, through the JSON encoder."""
    content = [
        response.email,
        response.score,
        utc_iso(response.submitted_at),
        response.driver,
        response.comment,
        response.account_hint,
        utc_iso(response.loop_closed_at) if response.loop_closed_at else None,
    ]
    return _CANONICAL.encode(content)


def _tag_mapping(values: Mapping[str, object]) -> dict[str, Any]:
    return {key: _tag(value, key) for key, value in values.items()}


def _tag(value: object, key: str) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime):
        return {_DATETIME: value.isoformat()}
    if isinstance(value, date):
        return {_DATE: value.isoformat()}
    if isinstance(value, tuple):
        return {_TUPLE: [_tag(item, key) for item in value]}
    if isinstance(value, list):
        return [_tag(item, key) for item in value]
    if isinstance(value, Mapping):
        return {str(k): _tag(v, key) for k, v in value.items()}
    raise TypeError(f"CRM value {key!r} of type {type(value).__name__} cannot be stored")


def crm_values_from_payload(values: Mapping[str, Any]) -> Mapping[str, object]:
    """A record's ``crm_values`` as stored in its payload, back as the CRM gave them."""
    return _untag_mapping(values)


def _untag_mapping(values: Mapping[str, Any]) -> Mapping[str, object]:
    if not values:
        return NO_VALUES
    intern, short = sys.intern, SHARED_LENGTH
    out: dict[str, object] = {}
    for key, value in values.items():
        # text, by far the most common value, without the general path's calls
        if type(value) is str:
            out[intern(key)] = intern(value) if len(value) <= short else value
        else:
            out[intern(key)] = _untag(value)
    return out


def _untag(value: Any) -> object:
    if isinstance(value, list):
        return [_untag(item) for item in value]
    if not isinstance(value, dict):
        return shared_text(value)
    if len(value) == 1 and next(iter(value)) in _TAGS:
        tag, inner = next(iter(value.items()))
        if tag == _DATETIME:
            return datetime.fromisoformat(inner)
        if tag == _DATE:
            return date.fromisoformat(inner)
        return tuple(_untag(item) for item in inner)
    return {key: _untag(item) for key, item in value.items()}
