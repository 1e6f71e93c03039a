"""Bulk API 2.0 query jobs, for reads too large for REST paging.

A job is created (``POST jobs/query``), polled until ``JobComplete``, and its CSV
results fetched page by page with the ``Sforce-Locator`` header. Calls go through
``SalesforceClient`` so they are budgeted, counted and retried like every other; the
SDK's own bulk helper is not used because it neither retries nor counts its calls and
sleeps on a fixed schedule.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Iterator
from typing import Any

import structlog
from tenacity import RetryCallState

from connectors.common.errors import RetriableError
from connectors.common.retry import RetryPolicy
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.errors import VENDOR, SalesforceFatalError

__all__ = ["BulkQuery"]

_log = structlog.get_logger(__name__)
_DONE = "JobComplete"
_FAILED = frozenset({"Failed", "Aborted"})


class _JobRunningError(RetriableError):
    """The job has not finished yet: poll again after the policy's wait."""


class BulkQuery:
    """Runs one Bulk API 2.0 query job and yields its rows in pages."""

    def __init__(
        self,
        client: SalesforceClient,
        *,
        poll_seconds: float = 5.0,
        max_wait_seconds: float = 6 * 3600,
        results_per_call: int = 50_000,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._client = client
        attempts = max(1, int(max_wait_seconds / poll_seconds))
        self._polling = RetryPolicy(
            attempts=attempts, initial=poll_seconds, maximum=poll_seconds * 6, sleep=sleep
        )
        self._results_per_call = results_per_call

    def pages(
        self, soql: str, *, include_deleted: bool, page_size: int
    ) -> Iterator[list[dict[str, Any]]]:
        """Rows of the job, ``page_size`` at a time; empty CSV cells are None."""
        job_id = self._create(soql, include_deleted)
        self._wait(job_id)
        locator: str | None = ""
        while locator is not None:
            text, locator = self._results(job_id, locator)
            rows: list[dict[str, Any]] = []
            for row in csv.DictReader(io.StringIO(text)):
                rows.append({k: (v if v != "" else None) for k, v in row.items()})
                if len(rows) == page_size:
                    yield rows
                    rows = []
            if rows:
                yield rows

    def _create(self, soql: str, include_deleted: bool) -> str:
        body = {"operation": "queryAll" if include_deleted else "query", "query": soql}
        job = self._client.json("bulk_create", "POST", "jobs/query", json=body)
        return str(job["id"])

    def _wait(self, job_id: str) -> None:
        def poll() -> None:
            job = self._client.json("bulk_poll", "GET", f"jobs/query/{job_id}")
            state = job.get("state")
            if state in _FAILED:
                raise SalesforceFatalError(
                    f"bulk query job {job_id} {state}: {job.get('errorMessage', '')}",
                    status=None,
                    code=str(state),
                )
            if state != _DONE:
                raise _JobRunningError(VENDOR, f"bulk query job {job_id} is {state}")

        for attempt in self._polling.retrying(on_retry=_log_poll):
            with attempt:
                poll()

    def _results(self, job_id: str, locator: str) -> tuple[str, str | None]:
        params: dict[str, Any] = {"maxRecords": self._results_per_call}
        if locator:
            params["locator"] = locator
        response = self._client.call(
            "bulk_results",
            "GET",
            f"jobs/query/{job_id}/results",
            params=params,
            headers={"Accept": "text/csv"},
        )
        nxt = response.headers.get("Sforce-Locator", "null")
        return response.text, (None if nxt in {"", "null"} else nxt)


def _log_poll(state: RetryCallState) -> None:
    _log.debug("salesforce_bulk_poll", attempt=state.attempt_number, wait_s=state.upcoming_sleep)
