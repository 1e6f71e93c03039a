"""The fake portal's owners, properties and property groups."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from tests.hubspot import wire
from tests.hubspot.seed import default_groups, default_properties, property_json

if TYPE_CHECKING:
    from tests.hubspot.fakeportal import Reply
    from tests.hubspot.fakestate import BadRequest

_OWNER_PARAMS = {"limit", "after", "archived", "email"}


class SchemaRoutes:
    """Mixed into FakePortal: schema state and its endpoints."""

    violation: Callable[[str], BadRequest]
    parse: Callable[..., Any]
    now_ms: int

    def __init__(self) -> None:
        self.properties = default_properties()
        self.groups = default_groups()
        self.owners: dict[str, dict[str, Any]] = {}

    def schema_routes(self) -> list[tuple[str, re.Pattern[str], Callable[..., Reply]]]:
        return [
            ("GET", re.compile(r"/crm/v3/owners/?"), self._owners),
            ("GET", re.compile(r"/crm/v3/properties/(?P<t>\w+)/groups"), self._groups),
            ("POST", re.compile(r"/crm/v3/properties/(?P<t>\w+)/groups"), self._create_group),
            ("POST", re.compile(r"/crm/v3/properties/(?P<t>\w+)/batch/create"), self._create_props),
            (
                "PATCH",
                re.compile(r"/crm/v3/properties/(?P<t>\w+)/(?P<name>\w+)"),
                self._update_prop,
            ),
            ("GET", re.compile(r"/crm/v3/properties/(?P<t>\w+)"), self._props),
        ]

    # -- seeding -------------------------------------------------------------------

    def add_owner(self, owner_id: str, email: str, *, archived: bool = False) -> None:
        self.owners[owner_id] = {
            "id": owner_id,
            "email": email,
            "firstName": email.split("@", maxsplit=1)[0].title(),
            "lastName": "Owner",
            "userId": int(owner_id),
            "type": "PERSON",
            "archived": archived,
            "createdAt": "2020-01-01T00:00:00.000Z",
            "updatedAt": "2020-01-01T00:00:00.000Z",
            "teams": [],
        }

    def define(
        self,
        object_type: str,
        name: str,
        hs_type: str,
        field_type: str,
        *,
        options: tuple[str, ...] = (),
        read_only: bool = False,
        group: str = "ax_agent",
    ) -> None:
        """Give the portal a property (as an admin would have, by hand)."""
        opts = [
            {"label": o, "value": o, "displayOrder": i, "hidden": False}
            for i, o in enumerate(options)
        ]
        self.groups[object_type].setdefault(
            group, {"name": group, "label": group, "displayOrder": 0, "archived": False}
        )
        self.properties[object_type][name] = property_json(
            name, hs_type, field_type, group=group, options=opts, read_only=read_only
        )

    # -- endpoints -----------------------------------------------------------------

    def _owners(self, *, query: dict[str, list[str]], body: Any) -> Reply:
        unknown = set(query) - _OWNER_PARAMS
        if unknown:
            raise self.violation(f"GET /crm/v3/owners: unknown parameters {sorted(unknown)}")
        limit = int(query.get("limit", ["100"])[0])
        if not 1 <= limit <= 500:
            raise self.violation(f"owners limit {limit} outside 1..500")
        archived = query.get("archived", ["false"])[0].lower() == "true"
        owners = sorted(
            (o for o in self.owners.values() if o["archived"] == archived),
            key=lambda o: int(o["id"]),
        )
        after = int(query.get("after", ["0"])[0])
        page = [o for o in owners if int(o["id"]) >= after][:limit]
        payload: dict[str, Any] = {"results": page}
        rest = [o for o in owners if int(o["id"]) > int(page[-1]["id"])] if page else []
        if rest:
            payload["paging"] = {
                "next": {"after": rest[0]["id"], "link": f"?after={rest[0]['id']}"}
            }
        return 200, {}, payload

    def _props(self, *, t: str, query: dict[str, list[str]], body: Any) -> Reply:
        return 200, {}, {"results": list(self._schema(t).values())}

    def _groups(self, *, t: str, query: dict[str, list[str]], body: Any) -> Reply:
        self._schema(t)
        return 200, {}, {"results": list(self.groups[t].values())}

    def _create_group(self, *, t: str, query: dict[str, list[str]], body: Any) -> Reply:
        request = self.parse(wire.PropertyGroupCreate, body, f"create group on {t}")
        self._schema(t)
        if request.name in self.groups[t]:
            return 409, {}, wire.error("CONFLICT", f"group {request.name} already exists")
        group = {
            "name": request.name,
            "label": request.label,
            "displayOrder": request.displayOrder or -1,
            "archived": False,
        }
        self.groups[t][request.name] = group
        return 201, {}, group

    def _create_props(self, *, t: str, query: dict[str, list[str]], body: Any) -> Reply:
        request = self.parse(wire.BatchInputPropertyCreate, body, f"create properties on {t}")
        schema = self._schema(t)
        created, errors = [], []
        for item in request.inputs:
            problem = self._create_problem(t, item)
            if problem:
                errors.append(
                    wire.standard_error("VALIDATION_ERROR", problem, {"name": [item.name]})
                )
                continue
            options = [o.model_dump(exclude_none=True) for o in item.options or ()]
            prop = property_json(
                item.name,
                item.type,
                item.fieldType,
                group=item.groupName,
                options=options,
                label=item.label,
            )
            prop.update(hubspotDefined=False, description=item.description or "")
            schema[item.name] = prop
            created.append(prop)
        return (207 if errors else 201), {}, wire.batch_response(created, errors, self.now_ms)

    def _create_problem(self, object_type: str, item: wire.PropertyCreate) -> str | None:
        if item.name in self.properties[object_type]:
            return f"property {item.name} already exists"
        if item.groupName not in self.groups[object_type]:
            return f"group {item.groupName} does not exist"
        if item.type in {"enumeration", "bool"} and not item.options:
            return f"{item.type} property {item.name} needs options"
        return None

    def _update_prop(self, *, t: str, name: str, query: dict[str, list[str]], body: Any) -> Reply:
        request = self.parse(wire.PropertyUpdate, body, f"update property {t}.{name}")
        prop = self._schema(t).get(name)
        if prop is None:
            return 404, {}, wire.error("OBJECT_NOT_FOUND", f"property {name} does not exist")
        changes = request.model_dump(exclude_none=True)
        if "options" in changes:
            changes["options"] = [dict(o) for o in changes["options"]]
        prop.update(changes)
        return 200, {}, prop

    def _schema(self, object_type: str) -> dict[str, dict[str, Any]]:
        if object_type not in self.properties:
            raise self.violation(f"unknown object type {object_type}")
        return self.properties[object_type]

    # -- write validation ------------------------------------------------------------

    def invalid_values(self, object_type: str, values: dict[str, str]) -> list[dict[str, Any]]:
        """HubSpot's per-property validation errors for one batch input (empty when valid)."""
        schema = self._schema(object_type)
        problems = []
        for name, value in values.items():
            prop = schema.get(name)
            error = _value_error(prop, value)
            if name == "hubspot_owner_id" and prop is not None:
                # The owner property's options are the portal's active owners.
                active = {i for i, o in self.owners.items() if not o["archived"]}
                error = None if value in active or value == "" else "INVALID_OPTION"
            if error:
                problems.append(
                    {
                        "isValid": False,
                        "message": f"{value!r}: {error}",
                        "error": error,
                        "name": name,
                    }
                )
        return problems


def _value_error(prop: dict[str, Any] | None, value: str) -> str | None:
    if prop is None:
        return "PROPERTY_DOESNT_EXIST"
    if prop["modificationMetadata"]["readOnlyValue"]:
        return "READ_ONLY_VALUE"
    if value == "":
        return None
    checks: dict[str, Callable[[str], bool]] = {
        "number": _is_number,
        "bool": lambda v: v in {"true", "false"},
        "datetime": _is_datetime,
        "enumeration": lambda v: all(
            p in {o["value"] for o in prop["options"]} for p in v.split(";")
        ),
    }
    check = checks.get(prop["type"])
    if check is not None and not check(value):
        return {
            "number": "INVALID_DOUBLE",
            "bool": "INVALID_BOOLEAN",
            "datetime": "INVALID_DATETIME",
        }.get(prop["type"], "INVALID_OPTION")
    return None


def _is_number(value: str) -> bool:
    try:
        float(value)
    except ValueError:
        return False
    return "e" not in value.lower()


def _is_datetime(value: str) -> bool:
    if value.isdigit():
        return True
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True
