"""Reading a SOQL result page by page: REST query locators, Bulk API 2.0 for big reads.

A REST query returns up to 2,000 records per page and a ``nextRecordsUrl`` for the
next; the first page also says how many records the whole result holds
(``totalSize``). Pages are chained inside Composite requests: one request carries up to
five query subrequests (Salesforce's limit for query operations in one Composite
call), each fetching the page named by the previous one's ``nextRecordsUrl`` by
reference (``@{p0.nextRecordsUrl}``), and counts as one call against the org's limits.
Once the size of the result is known, a request carries only the pages still to come.
An org that refuses Composite is read with plain ``nextRecordsUrl`` paging, one call a
page (remembered for the connector's life). Above ``bulk_threshold`` the rest of the
read switches to a Bulk API 2.0 query job, whose results are de-duplicated against the
pages already yielded. Pages are yielded one request at a time, so memory holds at
most five pages, not the org.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import structlog

from connectors.common.errors import RetriableError
from connectors.common.paging import RepeatedCursorError, paginate
from connectors.salesforce.bulk import BulkQuery
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.errors import SalesforceFatalError, classify_status, error_of

__all__ = ["QueryReader", "Record"]

Record = dict[str, Any]
_log = structlog.get_logger(__name__)

#: Query operations Salesforce allows in one Composite request.
CHAIN = 5
#: Statuses of a Composite request (or its first subrequest) that mean "not here".
_REFUSED_STATUSES = frozenset({403, 404, 405, 501})
#: Times one page is asked for again after a retriable subrequest failure.
_PAGE_ATTEMPTS = 3


class _CompositeRefusedError(Exception):
    """The org does not take query subrequests in Composite requests."""


@dataclass(frozen=True, slots=True)
class _Chain:
    """The pages one Composite request brought, and where the read goes on."""

    pages: list[Sequence[Record]]
    total_size: int
    next_url: str | None
    #: A retriable failure of the page after ``pages`` (asked for again from ``next_url``).
    retry: RetriableError | None = None


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
        use_composite: bool = True,
        chain: int = CHAIN,
    ) -> None:
        self._client = client
        self._bulk = bulk
        self._bulk_threshold = bulk_threshold
        self._page_size = page_size
        self._chain = max(1, min(CHAIN, chain))
        self.composite_refused = not use_composite

    def pages(self, soql: str, *, include_deleted: bool = False) -> Iterator[Sequence[Record]]:
        """Every page of the result; ``include_deleted`` reads the recycle bin too (queryAll)."""
        if not self.composite_refused:
            try:
                first = self._chained(self._query_url(soql, include_deleted), None)
            except _CompositeRefusedError as refused:
                self._refuse(str(refused))
            else:
                yield from self._chained_pages(soql, include_deleted, first)
                return
        yield from self._plain_pages(soql, include_deleted)

    # -- chained in Composite requests ----------------------------------------------------

    def _chained_pages(
        self, soql: str, include_deleted: bool, first: _Chain
    ) -> Iterator[Sequence[Record]]:
        yield from first.pages
        if first.next_url is None:
            return
        if self._wants_bulk(first.total_size):
            already = {str(r["Id"]) for page in first.pages for r in page}
            yield from self._bulk_rest(soql, include_deleted, first.total_size, already)
            return
        chain, read = first, sum(len(p) for p in first.pages)
        per_page = max(1, *(len(p) for p in first.pages))
        seen: set[str] = set()
        while chain.next_url is not None:
            if chain.next_url in seen:
                raise RepeatedCursorError(f"cursor {chain.next_url!r} repeated; stopping")
            seen.add(chain.next_url)
            left = math.ceil(max(0, chain.total_size - read) / per_page)
            chain = self._chained(chain.next_url, max(1, left))
            read += sum(len(p) for p in chain.pages)
            yield from chain.pages

    def _chained(self, url: str, pages: int | None) -> _Chain:
        """One Composite request for up to ``pages`` pages from ``url`` (None: a full chain,
        the first request of a read, which may be refused)."""
        count = min(self._chain, pages or self._chain)
        headers = self._headers()
        subs: list[dict[str, Any]] = []
        for i in range(count):
            sub: dict[str, Any] = {
                "method": "GET",
                "url": url if i == 0 else f"@{{p{i - 1}.nextRecordsUrl}}",
                "referenceId": f"p{i}",
            }
            if headers:
                sub["httpHeaders"] = headers
            subs.append(sub)
        request = {"allOrNone": False, "compositeRequest": subs}
        for attempt in range(1, _PAGE_ATTEMPTS + 1):
            try:
                body = self._client.json(
                    "query", "POST", "composite", json=request, subrequests=count
                )
            except SalesforceFatalError as exc:
                if pages is None and exc.status in _REFUSED_STATUSES:
                    raise _CompositeRefusedError(str(exc)) from None
                raise
            answers = {a.get("referenceId"): a for a in (body or {}).get("compositeResponse", [])}
            chain = self._read_chain(answers, count, first=pages is None and attempt == 1)
            if chain.pages or chain.retry is None:
                return chain
            if attempt == _PAGE_ATTEMPTS:
                raise chain.retry
            _log.info("salesforce_query_page_resent", error=str(chain.retry), attempt=attempt)
        raise AssertionError("unreachable")  # pragma: no cover

    def _read_chain(self, answers: dict[Any, Any], count: int, *, first: bool) -> _Chain:
        """The pages a Composite answer holds, up to the first that failed or was the last."""
        pages: list[Sequence[Record]] = []
        total, next_url = 0, None
        for i in range(count):
            answer = answers.get(f"p{i}", {})
            status = int(answer.get("httpStatusCode", 0))
            body = answer.get("body")
            if not 200 <= status < 300 or not isinstance(body, dict):
                if first and i == 0 and _refused(status, body):
                    raise _CompositeRefusedError(f"HTTP {status} {error_of(body)}")
                error = classify_status(status or 500, body, "query page")
                if isinstance(error, RetriableError):
                    return _Chain(pages, total, next_url, retry=error)
                raise error or SalesforceFatalError(
                    f"query page failed: HTTP {status}", status=status, code=None
                )
            pages.append(body["records"])
            total = int(body.get("totalSize", total))
            next_url = _next(body)
            if next_url is None:
                break
        return _Chain(pages, total, next_url)

    def _query_url(self, soql: str, include_deleted: bool) -> str:
        resource = "queryAll" if include_deleted else "query"
        return f"{self._client.data_path}{resource}?q={quote(soql, safe='')}"

    def _refuse(self, detail: str) -> None:
        self.composite_refused = True
        _log.warning("salesforce_composite_refused", detail=detail[:300], fallback="query_pages")

    # -- one page a call ------------------------------------------------------------------

    def _plain_pages(self, soql: str, include_deleted: bool) -> Iterator[Sequence[Record]]:
        first = self._first(soql, include_deleted)
        yield first.records
        if first.next_url is None:
            return
        if self._wants_bulk(first.total_size):
            already = {str(r["Id"]) for r in first.records}
            yield from self._bulk_rest(soql, include_deleted, first.total_size, already)
            return
        yield from paginate(self._more, start=first.next_url)

    def _wants_bulk(self, total: int) -> bool:
        return (
            self._bulk is not None
            and self._bulk_threshold is not None
            and total > self._bulk_threshold
        )

    def _bulk_rest(
        self, soql: str, include_deleted: bool, total_size: int, already: set[str]
    ) -> Iterator[Sequence[Record]]:
        assert self._bulk is not None  # checked by _wants_bulk
        _log.info("salesforce_bulk_query", total_size=total_size, threshold=self._bulk_threshold)
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


def _refused(status: int, body: Any) -> bool:
    """A first query subrequest answered as if Composite queries were not served here."""
    code, _ = error_of(body)
    return status in _REFUSED_STATUSES and code not in {"INVALID_FIELD", "MALFORMED_QUERY"}
