"""The one way this connector talks to Salesforce's REST API.

Every call goes through ``SalesforceClient.call``: the run's API budget is checked,
the call is counted by kind, ``Sforce-Limit-Info`` (sent free on every response) feeds
the budget, an expired session is renewed once, and the outcome is classified into
``connectors.common.errors`` so the one retry policy (tenacity, honouring
Retry-After) decides what happens next. simple-salesforce logs in, parses the limit
header and drives the Metadata API; the REST calls themselves are made here, on the
same ``requests.Session``, because the SDK's exceptions drop the response headers
(Retry-After, Sforce-Limit-Info) and its own 401 handling logs in again up to four
times per call. Tests and benchmarks fake Salesforce at that HTTP boundary.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import requests
import structlog
from simple_salesforce.api import Salesforce
from simple_salesforce.util import Usage as SdkUsage

from connectors.common.budget import CallBudget, Usage
from connectors.common.calls import CallCounter
from connectors.common.network import CONNECT_TIMEOUT_S
from connectors.common.retry import RetryPolicy, call_with_retry
from connectors.salesforce.auth import Login, Session
from connectors.salesforce.errors import (
    VENDOR,
    SalesforceFatalError,
    classify_response,
    from_transport,
    is_invalid_session,
)

__all__ = ["SalesforceClient"]

_log = structlog.get_logger(__name__)


class SalesforceClient:
    """An authenticated REST client with budget, counting, re-auth and retry."""

    def __init__(
        self,
        login: Login,
        *,
        api_version: str,
        http: requests.Session | None = None,
        policy: RetryPolicy | None = None,
        counter: CallCounter | None = None,
        budget: CallBudget | None = None,
        timeout: float = 120.0,
    ) -> None:
        self.api_version = api_version
        self.http = http or requests.Session()
        self.policy = policy or RetryPolicy()
        self.counter = counter or CallCounter(VENDOR)
        self.budget = budget or CallBudget(VENDOR)
        self._login = login
        self._timeout = timeout
        self._session: Session | None = None
        #: Salesforce's clock at its last response (the ``Date`` header), when it sent one.
        self.server_time: datetime | None = None

    @property
    def data_path(self) -> str:
        """``/services/data/vNN.0/``: the prefix of every REST resource."""
        return f"/services/data/v{self.api_version}/"

    @property
    def session(self) -> Session:
        """The current session, logging in on first use."""
        if self._session is None:
            self._session = self._new_session()
        return self._session

    def sdk(self) -> Salesforce:
        """A simple-salesforce client on this session (for the Metadata API)."""
        session = self.session
        return Salesforce(
            session_id=session.token,
            instance_url=session.instance_url,
            version=self.api_version,
            session=self.http,
        )

    def call(
        self,
        kind: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        headers: Mapping[str, str] | None = None,
        subrequests: int = 0,
    ) -> requests.Response:
        """Make one logical call (retried as a whole); raise a classified error on failure.

        ``subrequests`` is how many requests a Composite call packs (for the counter)."""

        def attempt() -> requests.Response:
            return self._attempt(
                kind,
                method,
                path,
                params=params,
                json=json,
                headers=headers,
                subrequests=subrequests,
            )

        return call_with_retry(self.policy, attempt)

    def json(self, kind: str, method: str, path: str, **kwargs: Any) -> Any:
        """``call`` and decode the JSON body (None for 204 No Content)."""
        response = self.call(kind, method, path, **kwargs)
        return None if response.status_code == 204 or not response.content else response.json()

    def _attempt(self, kind: str, method: str, path: str, **kwargs: Any) -> requests.Response:
        self.budget.check()
        response = self._send(kind, method, path, **kwargs)
        if is_invalid_session(response) and self._login.can_refresh:
            _log.info("salesforce_session_renewed", kind=kind)
            self._session = self._new_session()
            response = self._send(kind, method, path, **kwargs)
        if is_invalid_session(response):
            hint = "log in again" if self._login.can_refresh else "set a new salesforce.session_id"
            raise SalesforceFatalError(
                f"{kind}: session expired or invalid; {hint}", status=401, code="INVALID_SESSION_ID"
            )
        error = classify_response(response, kind)
        if error is not None:
            raise error
        return response

    def _send(
        self,
        kind: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None,
        json: Any,
        headers: Mapping[str, str] | None,
        subrequests: int = 0,
    ) -> requests.Response:
        session = self.session
        all_headers = {
            "Authorization": f"Bearer {session.token}",
            "Accept": "application/json",
            **(headers or {}),
        }
        started = time.perf_counter()
        url = self._url(path)
        try:
            response = self.http.request(
                method,
                url,
                params=params,
                json=json,
                headers=all_headers,
                timeout=(min(CONNECT_TIMEOUT_S, self._timeout), self._timeout),
            )
        except requests.RequestException as exc:
            self.counter.count(kind, "error", seconds=time.perf_counter() - started)
            raise from_transport(exc, kind, url) from None
        self.budget.spend()
        self.counter.count(
            kind,
            "ok" if response.status_code < 300 else "error",
            status=response.status_code,
            seconds=time.perf_counter() - started,
            subrequests=subrequests,
        )
        self._observe_limits(response)
        self._observe_date(response)
        return response

    def _observe_date(self, response: requests.Response) -> None:
        value = response.headers.get("Date")
        if not value:
            return
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return
        self.server_time = when if when.tzinfo else when.replace(tzinfo=UTC)

    def _observe_limits(self, response: requests.Response) -> None:
        header = response.headers.get("Sforce-Limit-Info")
        if not header:
            return
        usage = Salesforce.parse_api_usage(header).get("api-usage")
        if isinstance(usage, SdkUsage):
            self.budget.observe(Usage(used=usage.used, limit=usage.total))

    def _url(self, path: str) -> str:
        if path.startswith("https://") or path.startswith("http://"):
            return path
        base = self.session.instance_url
        return f"{base}{path}" if path.startswith("/") else f"{base}{self.data_path}{path}"

    def _new_session(self) -> Session:
        def login() -> Session:
            if not self._login.can_refresh:  # a configured session id needs no call
                return self._login.login()
            started = time.perf_counter()
            try:
                session = self._login.login()
            except Exception:
                self.counter.count("login", "error", seconds=time.perf_counter() - started)
                raise
            self.counter.count("login", seconds=time.perf_counter() - started)
            return session

        return call_with_retry(self.policy, login)
