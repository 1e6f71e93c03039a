"""The data of a fake Salesforce org: records, field schemas, a clock, and SOQL over them.

Only what the connector sends is understood: ``SELECT fields FROM Object [WHERE a op
literal AND …]`` with ``=``, ``!=``, ``<``, ``<=``, ``>``, ``>=`` and ``IN``, and
relationship paths (``Owner.Email``) resolved through the ``…Id`` field.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

__all__ = ["FakeField", "FakeOrg", "SoqlError", "apply_create", "close_task", "parse_soql"]

_KEY_PREFIX = {"Account": "001", "Contact": "003", "User": "005", "Task": "00T"}
_SELECT = re.compile(
    r"^\s*SELECT\s+(?P<fields>.+?)\s+FROM\s+(?P<obj>\w+)(?:\s+WHERE\s+(?P<where>.+))?\s*$",
    re.I | re.S,
)
_CONDITION = re.compile(
    r"^\s*(?P<field>[\w.]+)\s*(?P<op>>=|<=|!=|=|>|<|\bIN\b)\s*(?P<value>.+?)\s*$", re.I | re.S
)
_DATETIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:?\d{2})$")


class SoqlError(ValueError):
    """A statement the fake org rejects, with Salesforce's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class FakeField:
    """One field of a fake object's describe."""

    name: str
    type: str = "string"
    updateable: bool = True
    custom: bool = False
    picklist: tuple[str, ...] = ()
    restricted: bool = False
    scale: int = 0

    def describe(self) -> dict[str, Any]:
        """The field as ``sobjects/X/describe`` lists it."""
        return {
            "name": self.name,
            "label": self.name.removesuffix("__c").replace("_", " "),
            "type": self.type,
            "updateable": self.updateable,
            "createable": self.updateable,
            "custom": self.custom,
            "nillable": self.type != "boolean",
            "precision": 18 if self.type in {"double", "currency", "percent"} else 0,
            "scale": self.scale,
            "length": 255 if self.type in {"string", "picklist", "multipicklist"} else 0,
            "restrictedPicklist": self.restricted,
            "picklistValues": [
                {"active": True, "defaultValue": False, "label": v, "validFor": None, "value": v}
                for v in self.picklist
            ],
        }


_STANDARD: Mapping[str, tuple[FakeField, ...]] = {
    "Account": (
        FakeField("Id", "id", updateable=False),
        FakeField("Name"),
        FakeField("Website", "url"),
        FakeField("AnnualRevenue", "currency"),
        FakeField("Industry", "picklist"),
        FakeField("OwnerId", "reference"),
        FakeField("IsDeleted", "boolean", updateable=False),
        FakeField("SystemModstamp", "datetime", updateable=False),
    ),
    "Contact": (
        FakeField("Id", "id", updateable=False),
        FakeField("AccountId", "reference"),
        FakeField("Email", "email"),
        FakeField("Name", "string", updateable=False),
        FakeField("Title"),
        FakeField("IsDeleted", "boolean", updateable=False),
        FakeField("SystemModstamp", "datetime", updateable=False),
    ),
    "User": (
        FakeField("Id", "id", updateable=False),
        FakeField("Email", "email"),
        FakeField("IsActive", "boolean"),
    ),
    # Task as the object reference documents it (the fields the agent uses); the
    # agent's AX_Alert_Key__c is added by ``add_task_key_field`` as provisioning would.
    "Task": (
        FakeField("Id", "id", updateable=False),
        FakeField("WhatId", "reference"),
        FakeField("WhoId", "reference"),
        FakeField("OwnerId", "reference"),
        FakeField("ActivityDate", "date"),
        FakeField("Subject", "combobox"),
        FakeField("Description", "textarea"),
        FakeField("Priority", "picklist", picklist=("High", "Normal", "Low"), restricted=True),
        FakeField(
            "Status",
            "picklist",
            picklist=(
                "Not Started",
                "In Progress",
                "Completed",
                "Waiting on someone else",
                "Deferred",
            ),
            restricted=True,
        ),
        FakeField("IsClosed", "boolean", updateable=False),
        FakeField("CompletedDateTime", "datetime", updateable=False),
        FakeField("IsDeleted", "boolean", updateable=False),
        FakeField("SystemModstamp", "datetime", updateable=False),
    ),
}
#: Task statuses whose ``IsClosed`` is true (the org's TaskStatus setup).
CLOSED_STATUSES = frozenset({"Completed"})


@dataclass(frozen=True, slots=True)
class Query:
    sobject: str
    fields: tuple[str, ...]
    conditions: tuple[tuple[str, str, Any], ...]


def parse_soql(soql: str) -> Query:
    match = _SELECT.match(soql)
    if match is None:
        raise SoqlError("MALFORMED_QUERY", f"unexpected SOQL: {soql[:80]}")
    fields = tuple(f.strip() for f in match["fields"].split(","))
    where = match["where"]
    parts = re.split(r"\s+AND\s+", where, flags=re.I) if where else []
    return Query(match["obj"], fields, tuple(_condition(p) for p in parts))


def _condition(text: str) -> tuple[str, str, Any]:
    match = _CONDITION.match(text)
    if match is None:
        raise SoqlError("MALFORMED_QUERY", f"unexpected condition: {text[:80]}")
    return match["field"], match["op"].upper(), _literal(match["value"])


def _literal(text: str) -> Any:
    text = text.strip()
    if text.startswith("("):
        return tuple(_literal(p) for p in _split_list(text[1:-1]))
    if text.startswith("'"):
        return re.sub(
            r"\\(.)", lambda m: {"n": "\n", "r": "\r", "t": "\t"}.get(m[1], m[1]), text[1:-1]
        )
    if _DATETIME.match(text):
        return datetime.fromisoformat(text)
    lowered = text.lower()
    if lowered in {"true", "false"}:
        return lowered == "true"
    if lowered == "null":
        return None
    return float(text)


def _split_list(text: str) -> list[str]:
    return list(re.findall(r"'(?:[^'\\]|\\.)*'|[^,\s]+", text))


class FakeOrg:
    """Records by object and id; every change stamps ``SystemModstamp`` from the clock."""

    def __init__(self, *, start: datetime | None = None) -> None:
        self.now = start or datetime(2024, 1, 1, tzinfo=UTC)
        self.schema: dict[str, dict[str, FakeField]] = {
            obj: {f.name.casefold(): f for f in fields} for obj, fields in _STANDARD.items()
        }
        self.records: dict[str, dict[str, dict[str, Any]]] = {obj: {} for obj in _STANDARD}
        self._ids = itertools.count(1)

    def tick(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)

    def stamp(self) -> str:
        return self.now.isoformat(timespec="milliseconds").replace("+00:00", "+0000")

    def add_field(self, sobject: str, spec: FakeField) -> None:
        self.schema.setdefault(sobject, {})[spec.name.casefold()] = spec

    def drop_field(self, sobject: str, name: str) -> None:
        self.schema.get(sobject, {}).pop(name.casefold(), None)

    def field(self, sobject: str, name: str) -> FakeField | None:
        return self.schema.get(sobject, {}).get(name.casefold())

    def new_id(self, sobject: str) -> str:
        prefix = _KEY_PREFIX.get(sobject, "a0X")
        return f"{prefix}{next(self._ids):012d}AAA"

    def insert(
        self, sobject: str, values: Mapping[str, Any], *, record_id: str | None = None
    ) -> str:
        rid = record_id or self.new_id(sobject)
        record = {"Id": rid, "IsDeleted": False, "SystemModstamp": self.stamp(), **values}
        if sobject == "User":
            record.setdefault("IsActive", True)  # a new user is active unless said otherwise
        self.records.setdefault(sobject, {})[rid] = record
        return rid

    def update(self, sobject: str, record_id: str, values: Mapping[str, Any]) -> None:
        record = self.records[sobject][record_id]
        record.update(values)
        record["SystemModstamp"] = self.stamp()

    def delete(self, sobject: str, record_id: str) -> None:
        self.update(sobject, record_id, {"IsDeleted": True})

    def find(self, record_id: str) -> tuple[str, dict[str, Any]] | None:
        for sobject, table in self.records.items():
            if record_id in table:
                return sobject, table[record_id]
        return None

    def matching(self, query: Query, *, include_deleted: bool) -> list[dict[str, Any]]:
        """The stored records a query selects (not copies; project them page by page)."""
        self._check_fields(query)
        table = self.records.get(query.sobject, {}).values()
        return [
            r
            for r in table
            if (include_deleted or not r.get("IsDeleted"))
            and all(_holds(r.get(f), op, v) for f, op, v in query.conditions)
        ]

    def _check_fields(self, query: Query) -> None:
        if query.sobject not in self.schema:
            raise SoqlError("INVALID_TYPE", f"sObject type '{query.sobject}' is not supported.")
        for name in query.fields:
            head = name.split(".")[0]
            known = self.field(query.sobject, head) or self.field(query.sobject, f"{head}Id")
            if known is None:
                raise SoqlError(
                    "INVALID_FIELD", f"No such column '{name}' on entity '{query.sobject}'."
                )

    def project(
        self, sobject: str, record: Mapping[str, Any], fields: tuple[str, ...]
    ) -> dict[str, Any]:
        """A record in Salesforce's JSON shape, relationship paths nested."""
        out: dict[str, Any] = {"attributes": _attributes(sobject, str(record["Id"]))}
        for name in fields:
            if "." in name:
                head, tail = name.split(".", 1)
                out[head] = self._related(record.get(f"{head}Id"), tail, out.get(head))
            else:
                stored = self.field(sobject, name)
                out[stored.name if stored else name] = record.get(stored.name if stored else name)
        return out

    def _related(self, related_id: Any, tail: str, current: Any) -> Any:
        found = self.find(str(related_id)) if related_id else None
        if found is None:
            return None
        sobject, related = found
        node = (
            current
            if isinstance(current, dict)
            else {"attributes": _attributes(sobject, str(related["Id"]))}
        )
        node[tail] = related.get(tail)
        return node


def _attributes(sobject: str, record_id: str) -> dict[str, str]:
    return {"type": sobject, "url": f"/services/data/v62.0/sobjects/{sobject}/{record_id}"}


def _comparable(value: Any) -> Any:
    if isinstance(value, str) and _DATETIME.match(value.replace("+0000", "+00:00")):
        return datetime.fromisoformat(value)
    return value


def _fold(value: Any) -> Any:
    """SOQL compares text case-insensitively."""
    return value.casefold() if isinstance(value, str) else value


def _holds(value: Any, op: str, literal: Any) -> bool:
    if op == "IN":
        return _fold(value) in {_fold(v) for v in literal}
    if op in {"=", "!="} and isinstance(value, str) and isinstance(literal, str):
        value, literal = value.casefold(), literal.casefold()
    left = _comparable(value)
    if op == "=":
        return bool(left == literal)
    if op == "!=":
        return bool(left != literal)
    if left is None or literal is None:
        return False
    comparisons = {
        ">=": left >= literal,
        "<=": left <= literal,
        ">": left > literal,
        "<": left < literal,
    }
    return bool(comparisons[op])


_KEYS = frozenset({"attributes", "id"})
Problem = tuple[str, str, list[str]]


def _field_problem(org: FakeOrg, sobject: str, name: str, value: Any) -> Problem | None:
    field = org.field(sobject, name)
    if field is None:
        return "INVALID_FIELD", f"No such column '{name}' on sobject of type {sobject}", [name]
    if not field.updateable:
        return "INVALID_FIELD_FOR_INSERT_UPDATE", f"Unable to create/update fields: {name}.", [name]
    parts = str(value).split(";") if value is not None else []
    if field.restricted and any(p not in field.picklist for p in parts):
        message = f"bad value for restricted picklist field: {value}"
        return "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST", message, [name]
    return None


def update_problem(
    org: FakeOrg, record: Mapping[str, Any], record_errors: Mapping[str, tuple[str, str]]
) -> Problem | None:
    """Why Salesforce would refuse this collection record, or None."""
    rid = str(record.get("id", ""))
    sobject = str(record.get("attributes", {}).get("type", ""))
    if rid in record_errors:
        code, message = record_errors[rid]
        return code, message, []
    stored = org.records.get(sobject, {}).get(rid)
    if stored is None:
        return "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", []
    if stored.get("IsDeleted"):
        return "ENTITY_IS_DELETED", "entity is deleted", []
    for name, value in record.items():
        problem = None if name in _KEYS else _field_problem(org, sobject, name, value)
        if problem is not None:
            return problem
    return None


def apply_update(
    org: FakeOrg, record: Mapping[str, Any], record_errors: Mapping[str, tuple[str, str]]
) -> dict[str, Any]:
    """One record of an sObject Collection update: its SaveResult."""
    problem = update_problem(org, record, record_errors)
    if problem is not None:
        code, message, fields = problem
        error = {"statusCode": code, "message": message, "fields": fields}
        return {"success": False, "errors": [error]}
    rid = str(record["id"])
    sobject = str(record["attributes"]["type"])
    values = {}
    for name, value in record.items():
        field = None if name in _KEYS else org.field(sobject, name)
        if field is not None:
            values[field.name] = value
    org.update(sobject, rid, values)
    if sobject == "Task":
        close_task(org, org.records["Task"][rid])
    return {"id": rid, "success": True, "errors": []}


def close_task(org: FakeOrg, record: dict[str, Any]) -> None:
    """Salesforce derives ``IsClosed`` and ``CompletedDateTime`` from the status."""
    closed = record.get("Status") in CLOSED_STATUSES
    if closed and not record.get("IsClosed"):
        record["CompletedDateTime"] = org.stamp()
    if not closed:
        record["CompletedDateTime"] = None
    record["IsClosed"] = closed


def apply_create(
    org: FakeOrg, record: Mapping[str, Any], unique: Mapping[str, str]
) -> dict[str, Any]:
    """One record of an sObject Collection create (``POST``): its SaveResult.

    ``unique`` maps an object to its external-id field, whose values must not repeat.
    """
    sobject = str(record.get("attributes", {}).get("type", ""))
    if "id" in record:
        return _refused("INVALID_FIELD", "cannot specify Id in an insert call", ["Id"])
    if sobject not in org.schema:
        return _refused("INVALID_TYPE", f"sObject type '{sobject}' is not supported.", [])
    values: dict[str, Any] = {}
    for name, value in record.items():
        if name == "attributes":
            continue
        problem = _field_problem(org, sobject, name, value)
        if problem is not None:
            return _refused(*problem)
        field = org.field(sobject, name)
        assert field is not None
        values[field.name] = value
    key_field = unique.get(sobject)
    if key_field and values.get(key_field) is not None:
        taken = [
            r
            for r in org.records.get(sobject, {}).values()
            if r.get(key_field) == values[key_field]
        ]
        if taken:
            message = (
                f"duplicate value found: {key_field} duplicates value on record "
                f"with id: {taken[0]['Id']}"
            )
            return _refused("DUPLICATE_VALUE", message, [key_field])
    rid = org.insert(sobject, values)
    if sobject == "Task":
        stored = org.records["Task"][rid]
        stored.setdefault("Status", "Not Started")
        close_task(org, stored)
    return {"id": rid, "success": True, "errors": []}


def _refused(code: str, message: str, fields: list[str]) -> dict[str, Any]:
    return {
        "success": False,
        "errors": [{"statusCode": code, "message": message, "fields": fields}],
    }
