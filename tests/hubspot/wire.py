"""HubSpot's documented request and response shapes, restated for the fake portal.

Request models forbid unknown keys and mirror the required fields and enums of
HubSpot's public OpenAPI documents (CRM objects v3, associations v4, properties v3,
owners v3) so a request the connector shapes wrongly fails the test. One documented
deviation: search ``sorts`` are accepted as HubSpot's search guide writes them
(``{"propertyName": ..., "direction": ...}``) as well as plain strings.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

_STRICT = ConfigDict(extra="forbid", populate_by_name=True)


class _Model(BaseModel):
    model_config = _STRICT


# -- objects v3 -----------------------------------------------------------------------


class SimplePublicObjectBatchInput(_Model):
    id: str
    properties: dict[str, str]
    idProperty: str | None = None  # noqa: N815  # HubSpot's JSON names
    objectWriteTraceId: str | None = None  # noqa: N815


class BatchInputSimplePublicObjectBatchInput(_Model):
    inputs: list[SimplePublicObjectBatchInput]


class AssociationSpec(_Model):
    associationCategory: Literal["HUBSPOT_DEFINED", "USER_DEFINED", "INTEGRATOR_DEFINED"]  # noqa: N815
    associationTypeId: int  # noqa: N815


class PublicObjectId(_Model):
    id: str


class PublicAssociationsForObject(_Model):
    to: PublicObjectId
    types: list[AssociationSpec]


class SimplePublicObjectInputForCreate(_Model):
    properties: dict[str, str]
    associations: list[PublicAssociationsForObject]
    objectWriteTraceId: str | None = None  # noqa: N815


class BatchInputSimplePublicObjectInputForCreate(_Model):
    inputs: list[SimplePublicObjectInputForCreate]


class SimplePublicObjectId(_Model):
    id: str


class BatchReadInputSimplePublicObjectId(_Model):
    inputs: list[SimplePublicObjectId]
    properties: list[str]
    propertiesWithHistory: list[str]  # noqa: N815
    idProperty: str | None = None  # noqa: N815


Operator = Literal[
    "BETWEEN",
    "CONTAINS_TOKEN",
    "EQ",
    "GT",
    "GTE",
    "HAS_PROPERTY",
    "IN",
    "LT",
    "LTE",
    "NEQ",
    "NOT_CONTAINS_TOKEN",
    "NOT_HAS_PROPERTY",
    "NOT_IN",
]


class Filter(_Model):
    propertyName: str  # noqa: N815
    operator: Operator
    value: str | None = None
    highValue: str | None = None  # noqa: N815
    values: list[str] | None = None


class FilterGroup(_Model):
    filters: list[Filter] = Field(max_length=6)


class Sort(_Model):
    propertyName: str  # noqa: N815
    direction: Literal["ASCENDING", "DESCENDING"] = "ASCENDING"


class PublicObjectSearchRequest(_Model):
    filterGroups: list[FilterGroup] = Field(max_length=5)  # noqa: N815
    sorts: list[Sort | str]
    properties: list[str]
    limit: int = Field(ge=1, le=200)
    after: str
    query: str | None = None


# -- associations v4 -------------------------------------------------------------------


class PublicFetchAssociationsBatchRequest(_Model):
    id: str
    after: str | None = None


class BatchInputPublicFetchAssociationsBatchRequest(_Model):
    inputs: list[PublicFetchAssociationsBatchRequest] = Field(max_length=1000)


# -- properties v3 ---------------------------------------------------------------------

PropertyType = Literal[
    "bool", "date", "datetime", "enumeration", "number", "phone_number", "string"
]
FieldType = Literal[
    "booleancheckbox",
    "calculation_equation",
    "checkbox",
    "date",
    "file",
    "html",
    "number",
    "phonenumber",
    "radio",
    "select",
    "text",
    "textarea",
]


class OptionInput(_Model):
    label: str
    value: str
    hidden: bool
    displayOrder: int | None = None  # noqa: N815
    description: str | None = None


class PropertyCreate(_Model):
    name: str
    label: str
    type: PropertyType
    fieldType: FieldType  # noqa: N815
    groupName: str  # noqa: N815
    description: str | None = None
    displayOrder: int | None = None  # noqa: N815
    hasUniqueValue: bool | None = None  # noqa: N815
    hidden: bool | None = None
    formField: bool | None = None  # noqa: N815
    options: list[OptionInput] | None = None
    calculationFormula: str | None = None  # noqa: N815
    externalOptions: bool | None = None  # noqa: N815
    referencedObjectType: str | None = None  # noqa: N815
    dataSensitivity: Literal["highly_sensitive", "non_sensitive", "sensitive"] | None = None  # noqa: N815
    numberDisplayHint: str | None = None  # noqa: N815
    textDisplayHint: str | None = None  # noqa: N815
    currencyPropertyName: str | None = None  # noqa: N815
    showCurrencySymbol: bool | None = None  # noqa: N815


class BatchInputPropertyCreate(_Model):
    inputs: list[PropertyCreate]


class PropertyGroupCreate(_Model):
    name: str
    label: str
    displayOrder: int | None = None  # noqa: N815


class PropertyUpdate(_Model):
    label: str | None = None
    type: PropertyType | None = None
    fieldType: FieldType | None = None  # noqa: N815
    groupName: str | None = None  # noqa: N815
    description: str | None = None
    options: list[OptionInput] | None = None
    displayOrder: int | None = None  # noqa: N815
    hidden: bool | None = None
    formField: bool | None = None  # noqa: N815
    calculationFormula: str | None = None  # noqa: N815
    numberDisplayHint: str | None = None  # noqa: N815
    textDisplayHint: str | None = None  # noqa: N815
    currencyPropertyName: str | None = None  # noqa: N815
    showCurrencySymbol: bool | None = None  # noqa: N815


# -- response shapes -------------------------------------------------------------------


def iso(ms: int) -> str:
    """HubSpot's timestamp form for epoch milliseconds."""
    when = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z"


def error(category: str, message: str, **extra: Any) -> dict[str, Any]:
    """The ``Error`` body of a failed request."""
    return {
        "status": "error",
        "message": message,
        "correlationId": str(uuid.uuid4()),
        "category": category,
        **extra,
    }


def standard_error(category: str, message: str, context: dict[str, list[str]]) -> dict[str, Any]:
    """One ``StandardError`` of a multi-status batch response."""
    return {
        "status": "error",
        "category": category,
        "message": message,
        "context": context,
        "errors": [],
        "links": {},
    }


def batch_response(results: list[Any], errors: list[dict[str, Any]], now_ms: int) -> dict[str, Any]:
    """``BatchResponse...`` (200/201) or ``...WithErrors`` (207) when there are errors."""
    body: dict[str, Any] = {
        "status": "COMPLETE",
        "results": results,
        "startedAt": iso(now_ms),
        "completedAt": iso(now_ms),
    }
    if errors:
        body.update(errors=errors, numErrors=len(errors))
    return body
