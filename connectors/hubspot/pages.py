"""Streaming HubSpot's CRM objects page by page: the list API and the search API.

``list_pages`` walks ``GET /crm/v3/objects/{type}`` 100 records at a time along
``paging.next.after`` (never the client's ``get_all``, which holds everything in
memory). ``search_pages`` reads records modified within a time window through
``POST /crm/v3/objects/{type}/search``, 200 at a time, paging by keyset (a filter
``hs_object_id > last id`` sorted by ``hs_object_id``) rather than by ``after``
offsets: no query ever pages towards the search API's 10,000-result cap, however
many records a window holds, and a record that changes while the read runs cannot
shift later pages and hide an unchanged one. Both guard against a repeating cursor.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from connectors.common.paging import paginate
from connectors.hubspot.client import HubSpotApis
from connectors.hubspot.cursor import Window, to_millis
from connectors.hubspot.records import HsRecord, next_after, results, to_record
from connectors.hubspot.transport import Transport

__all__ = ["list_pages", "search_pages"]


def list_pages(
    transport: Transport,
    apis: HubSpotApis,
    object_type: str,
    *,
    properties: Sequence[str],
    associations: Sequence[str] = (),
    archived: bool = False,
    page_size: int = 100,
) -> Iterator[Sequence[HsRecord]]:
    """Every record of ``object_type`` (or every archived one), one page at a time."""
    kind = f"{object_type}.list" + (".archived" if archived else "")

    def fetch(after: str | None) -> tuple[list[HsRecord], str | None]:
        response = transport.call(
            kind,
            apis.objects_basic.get_page,
            object_type,
            limit=page_size,
            after=after,
            properties=list(properties),
            associations=list(associations) or None,
            # Booleans go on the wire as HubSpot documents them; false is the default.
            archived="true" if archived else None,
        )
        return [to_record(r) for r in results(response)], next_after(response)

    return paginate(fetch)


def search_pages(
    transport: Transport,
    apis: HubSpotApis,
    object_type: str,
    *,
    date_property: str,
    window: Window,
    properties: Sequence[str],
    page_size: int = 200,
    extra_filters: Sequence[dict[str, Any]] = (),
) -> Iterator[Sequence[HsRecord]]:
    """Records whose ``date_property`` lies in ``window`` (inclusive), in id order;
    ``extra_filters`` narrow the search further (at most four: HubSpot takes six)."""

    def fetch(last_id: str | None) -> tuple[list[HsRecord], str | None]:
        request = _search_request(date_property, window, properties, page_size, last_id)
        request["filterGroups"][0]["filters"].extend(extra_filters)
        response = transport.call(
            f"{object_type}.search",
            apis.objects_search.do_search,
            object_type,
            request,
            search=True,
        )
        records = [to_record(r) for r in results(response)]
        more = len(records) >= page_size and int(response.get("total") or 0) > len(records)
        return records, (records[-1].id if more else None)

    return paginate(fetch)


def _search_request(
    date_property: str,
    window: Window,
    properties: Sequence[str],
    page_size: int,
    last_id: str | None,
) -> dict[str, Any]:
    """A ``PublicObjectSearchRequest``: the window and the keyset, sorted by id."""
    filters = [
        {
            "propertyName": date_property,
            "operator": "BETWEEN",
            "value": to_millis(window.low),
            "highValue": to_millis(window.high),
        },
        {"propertyName": "hs_object_id", "operator": "GT", "value": last_id or "0"},
    ]
    return {
        "filterGroups": [{"filters": filters}],
        # HubSpot's search guide writes sorts as objects (the client types them as strings).
        "sorts": [{"propertyName": "hs_object_id", "direction": "ASCENDING"}],
        "properties": list(properties),
        "limit": page_size,
        "after": "0",
    }
