"""Default property definitions of a fresh HubSpot portal (the ones the agent reads)."""

from __future__ import annotations

from typing import Any

_READ_ONLY = {
    "hs_object_id",
    "createdate",
    "hs_lastmodifieddate",
    "lastmodifieddate",
    "hs_merged_object_ids",
    "hs_createdate",
    "hs_task_completion_date",
}
_TASK_OPTIONS = {
    "hs_task_priority": ("NONE", "LOW", "MEDIUM", "HIGH"),
    "hs_task_status": ("NOT_STARTED", "IN_PROGRESS", "WAITING", "COMPLETED", "DEFERRED"),
}

_DEFAULTS: dict[str, list[tuple[str, str, str]]] = {
    "companies": [
        ("name", "string", "text"),
        ("domain", "string", "text"),
        ("hs_additional_domains", "enumeration", "checkbox"),
        ("website", "string", "text"),
        ("annualrevenue", "number", "number"),
        ("hubspot_owner_id", "enumeration", "select"),
        ("industry", "enumeration", "select"),
        ("hs_object_id", "number", "number"),
        ("createdate", "datetime", "date"),
        ("hs_lastmodifieddate", "datetime", "date"),
        ("hs_merged_object_ids", "enumeration", "checkbox"),
    ],
    "contacts": [
        ("email", "string", "text"),
        ("firstname", "string", "text"),
        ("lastname", "string", "text"),
        ("jobtitle", "string", "text"),
        ("hs_object_id", "number", "number"),
        ("createdate", "datetime", "date"),
        ("lastmodifieddate", "datetime", "date"),
        ("hs_lastmodifieddate", "datetime", "date"),
        ("hs_merged_object_ids", "enumeration", "checkbox"),
    ],
    # The task properties HubSpot documents (engagements: tasks) that the agent uses.
    "tasks": [
        ("hs_task_subject", "string", "text"),
        ("hs_task_body", "string", "html"),
        ("hs_timestamp", "datetime", "date"),
        ("hs_task_priority", "enumeration", "select"),
        ("hs_task_status", "enumeration", "select"),
        ("hs_task_completion_date", "datetime", "date"),
        ("hubspot_owner_id", "enumeration", "select"),
        ("hs_object_id", "number", "number"),
        ("hs_createdate", "datetime", "date"),
        ("hs_lastmodifieddate", "datetime", "date"),
    ],
    "feedback_submissions": [
        ("hs_survey_type", "enumeration", "select"),
        ("hs_response_value", "string", "text"),
        ("hs_content", "string", "textarea"),
        ("hs_submission_timestamp", "datetime", "date"),
        ("hs_contact_email_rollup", "string", "text"),
        ("hs_object_id", "number", "number"),
        ("hs_createdate", "datetime", "date"),
        ("hs_lastmodifieddate", "datetime", "date"),
    ],
}


def property_json(
    name: str,
    hs_type: str,
    field_type: str,
    *,
    group: str = "companyinformation",
    options: list[dict[str, Any]] | None = None,
    read_only: bool = False,
    label: str | None = None,
) -> dict[str, Any]:
    """A ``Property`` as ``GET /crm/v3/properties/{objectType}`` returns it."""
    return {
        "name": name,
        "label": label or name.replace("_", " ").title(),
        "type": hs_type,
        "fieldType": field_type,
        "groupName": group,
        "description": "",
        "options": options or [],
        "displayOrder": -1,
        "calculated": False,
        "externalOptions": False,
        "hasUniqueValue": False,
        "hidden": False,
        "hubspotDefined": True,
        "formField": False,
        "archived": False,
        "createdAt": "2020-01-01T00:00:00.000Z",
        "updatedAt": "2020-01-01T00:00:00.000Z",
        "modificationMetadata": {
            "archivable": not read_only,
            "readOnlyDefinition": True,
            "readOnlyValue": read_only,
        },
    }


def default_properties() -> dict[str, dict[str, dict[str, Any]]]:
    """Object type -> property name -> definition, for a portal the agent never touched."""
    group = {
        "companies": "companyinformation",
        "contacts": "contactinformation",
        "tasks": "task",
        "feedback_submissions": "feedbacksubmissioninformation",
    }
    return {
        object_type: {
            name: property_json(
                name,
                t,
                f,
                group=group[object_type],
                read_only=name in _READ_ONLY,
                options=[
                    {"label": o.title(), "value": o, "displayOrder": i, "hidden": False}
                    for i, o in enumerate(_TASK_OPTIONS.get(name, ()))
                ]
                if object_type == "tasks"
                else None,
            )
            for name, t, f in props
        }
        for object_type, props in _DEFAULTS.items()
    }


def default_groups() -> dict[str, dict[str, dict[str, Any]]]:
    """Object type -> group name -> ``PropertyGroup``."""
    names = {
        "companies": "companyinformation",
        "contacts": "contactinformation",
        "tasks": "task",
        "feedback_submissions": "feedbacksubmissioninformation",
    }
    return {
        t: {n: {"name": n, "label": n.title(), "displayOrder": 0, "archived": False}}
        for t, n in names.items()
    }
