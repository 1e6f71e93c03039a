"""Reading a SOQL result page by page: REST query locators, Bulk API 2.0 for big reads.

A REST query returns up to 2,000 records per page and a ``nextRecordsUrl`` for the
next; the first page also says how many records the whole result holds
(``totalSize``). Above ``bulk_threshold`` the rest of the read switches to a Bulk API
2.0 query job, whose results are de-duplicated against the first page already
yielded. Pages are yielded one at a time, so memory holds one page, not the org.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import structlog

from connectors.common.paging import paginate
from connectors.salesforce.bulk import BulkQuery
from connectors.salesforce.client import SalesforceClient

__all__ = ["QueryReader", "Record"]

Record = dict[str, Any]
_log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class _FirstPage:
    records: Sequence[Record]
    total_size: int
    next_url: str | None


class QueryReader:
    """Pages of raw records for one SOQL statement."""

    def __init__(
        self,
        client: SalesforceClient,
        *,
        bulk: BulkQuery | None = None,
        bulk_threshold: int | None = None,
        page_size: int = 2000,
    ) -> None:
        self._client = client
        self._bulk = bulk
        self._bulk_threshold = bulk_threshold
        self._page_size = page_size

    def pages(self, soql: str, *, include_deleted: bool = False) -> Iterator[Sequence[Record]]:
        """Every page of the result; ``include_deleted`` reads the recycle bin too (queryAll)."""
        first = self._first(soql, include_deleted)
        yield first.records
        if first.next_url is None:
            return
        if self._wants_bulk(first.total_size):
            yield from self._bulk_rest(soql, include_deleted, first)
            return
        yield from paginate(self._more, start=first.next_url)

    def _wants_bulk(self, total: int) -> bool:
        return (
            self._bulk is not None
            and self._bulk_threshold is not None
            and total > self._bulk_threshold
        )

    def _bulk_rest(
        self, soql: str, include_deleted: bool, first: _FirstPage
    ) -> Iterator[Sequence[Record]]:
        assert self._bulk is not None  # checked by _wants_bulk
        _log.info(
            "salesforce_bulk_query", total_size=first.total_size, threshold=self._bulk_threshold
        )
        already = {str(r["Id"]) for r in first.records}
        for page in self._bulk.pages(
            soql, include_deleted=include_deleted, page_size=self._page_size
        ):
            fresh = [r for r in page if str(r.get("Id")) not in already]
            if fresh:
                yield fresh

    def _headers(self) -> dict[str, str]:
        if self._page_size == 2000:
            return {}
        return {"Sforce-Query-Options": f"batchSize={self._page_size}"}

    def _first(self, soql: str, include_deleted: bool) -> _FirstPage:
        resource = "queryAll" if include_deleted else "query"
        body = self._client.json(
            "query", "GET", resource, params={"q": soql}, headers=self._headers()
        )
        return _FirstPage(body["records"], int(body.get("totalSize", 0)), _next(body))

    def _more(self, next_url: str | None) -> tuple[Sequence[Record], str | None]:
        assert next_url is not None  # paginate starts at the first page's next URL
        body = self._client.json("query", "GET", next_url, headers=self._headers())
        return body["records"], _next(body)


def _next(body: dict[str, Any]) -> str | None:
    if body.get("done", True):
        return None
    return str(body["nextRecordsUrl"])
