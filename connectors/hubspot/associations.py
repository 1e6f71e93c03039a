"""A contact's company: inline from the list call, or the associations v4 batch read.

HubSpot marks one company per contact as primary (v3 type ``contact_to_company``;
v4 association type id 1, label "Primary"); that one is the contact's account. A
contact with companies but no primary one takes the first listed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from agent.core.batching import chunked
from connectors.hubspot.client import HubSpotApis
from connectors.hubspot.records import AssocRef, results
from connectors.hubspot.transport import Transport

__all__ = ["PRIMARY_COMPANY_TYPE", "PRIMARY_COMPANY_TYPE_ID", "associated_ids", "primary_inline"]

PRIMARY_COMPANY_TYPE = "contact_to_company"
PRIMARY_COMPANY_TYPE_ID = 1


def primary_inline(refs: Sequence[AssocRef]) -> str | None:
    """The primary company among a contact's inline ``associations.companies``."""
    for ref in refs:
        if ref.type == PRIMARY_COMPANY_TYPE:
            return ref.id
    return refs[0].id if refs else None


def associated_ids(
    transport: Transport,
    apis: HubSpotApis,
    from_type: str,
    to_type: str,
    ids: Iterable[str],
    *,
    batch_size: int = 1000,
) -> dict[str, str]:
    """The (primary) associated record of each id that has one: one call per ``batch_size``."""
    found: dict[str, str] = {}
    for chunk in chunked(ids, batch_size):
        request = {"inputs": [{"id": i} for i in chunk]}
        response = transport.call(
            f"associations.{from_type}.{to_type}.read",
            apis.associations_batch.get_page,
            from_type,
            to_type,
            request,
        )
        found.update(_primary_targets(results(response)))
    return found


def _primary_targets(found: Iterable[Mapping[str, Any]]) -> Mapping[str, str]:
    chosen: dict[str, str] = {}
    for result in found:
        targets = list(result.get("to") or ())
        if not targets:
            continue
        primary = next((t for t in targets if _is_primary(t)), targets[0])
        chosen[str(result["from"]["id"])] = str(primary["toObjectId"])
    return chosen


def _is_primary(target: Mapping[str, Any]) -> bool:
    for spec in target.get("associationTypes") or ():
        if (
            spec.get("typeId") == PRIMARY_COMPANY_TYPE_ID
            and spec.get("category") == "HUBSPOT_DEFINED"
        ):
            return True
        if (spec.get("label") or "").lower() == "primary":
            return True
    return False
