"""``FakeSalesforce``: an in-memory org answering HTTP requests as Salesforce does.

Plug it in at the HTTP boundary, either as a ``responses`` callback
(``rsps.add_callback(method, fake.url_pattern, callback=fake)``) or by mounting
``fake.adapter()`` on a ``requests.Session`` (benchmarks). It serves the REST
resources the connector uses (query/queryAll with ``nextRecordsUrl`` paging,
describe, sObject Collections, Composite, Bulk API 2.0 query), partner SOAP login,
the OAuth 2.0 token endpoint and the Metadata calls of provisioning, with
``Sforce-Limit-Info`` on every REST response. Faults are injected per kind of call.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.utils import format_datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from requests.adapters import BaseAdapter

from tests.salesforce.fake.bulk import FakeBulk
from tests.salesforce.fake.org import (
    FakeOrg,
    Query,
    SoqlError,
    apply_create,
    apply_update,
    parse_soql,
)
from tests.salesforce.fake.soap import (
    login_fault,
    login_response,
    metadata_response,
    soap_credentials,
)

__all__ = ["FakeSalesforce", "Fault"]

Reply = tuple[int, dict[str, str], str]
_JSON = {"Content-Type": "application/json;charset=UTF-8"}
_NOT_FOUND = [{"errorCode": "NOT_FOUND", "message": "The requested resource does not exist"}]


@dataclass(slots=True)
class Fault:
    """Answer the next ``times`` calls of ``kind`` with this status, body and headers
    (or raise ``body`` when it is an exception, as a dropped connection does)."""

    kind: str
    status: int
    body: Any
    headers: Mapping[str, str]
    times: int = 1


def _reply(status: int, body: Any, headers: Mapping[str, str] | None = None) -> Reply:
    if isinstance(body, str):  # a SOAP envelope or other text, sent as is
        return status, {"Content-Type": "text/xml", **(headers or {})}, body
    return status, {**_JSON, **(headers or {})}, json.dumps(body)


class FakeSalesforce:
    """One fake org and its endpoints; ``calls`` counts requests by kind."""

    def __init__(
        self,
        *,
        instance_url: str = "https://fake.my.salesforce.com",
        api_version: str = "62.0",
        daily_limit: int = 1_000_000,
        api_used: int = 0,
        credentials: Mapping[str, str] | None = None,
        consumer_key: str = "fake-consumer-key",
    ) -> None:
        self.org = FakeOrg()
        self.instance_url = instance_url
        self.api_version = api_version
        self.daily_limit = daily_limit
        self.api_used = api_used
        self.credentials = dict(credentials or {})
        self.consumer_key = consumer_key
        self.calls: Counter[str] = Counter()
        #: Requests served inside Composite requests, by kind.
        self.subrequests: Counter[str] = Counter()
        self.tokens = {"fake-session"}
        self.refuse_composite = False
        self.record_errors: dict[str, tuple[str, str]] = {}
        #: Create refusals by a field's value (``{"Subject": ("CODE", "message")}`` …).
        self.create_errors: dict[tuple[str, str], tuple[str, str]] = {}
        #: Objects whose external-id field is unique: creating a repeat fails.
        self.unique_fields: dict[str, str] = {}
        self.bulk = FakeBulk(self.org, api_version)
        self.metadata: dict[str, Any] = {
            "operations": [],
            "created": [],
            "permission_sets": {},
            "create_errors": {},
            "hidden_fields": set(),
        }
        self._faults: list[Fault] = []
        self._locators: dict[str, tuple[Query, list[dict[str, Any]]]] = {}
        self._seq = itertools.count(1)
        self.url_pattern = re.compile(r"https://[^/]+/services/.*")

    # -- arranging -----------------------------------------------------------------------

    def fail(
        self,
        kind: str,
        status: int,
        body: Any = None,
        *,
        headers: Mapping[str, str] | None = None,
        times: int = 1,
    ) -> None:
        """Make the next ``times`` calls of ``kind`` fail (kinds as in ``calls``)."""
        self._faults.append(Fault(kind, status, body, dict(headers or {}), times))

    def fail_record(self, record_id: str, code: str, message: str) -> None:
        """Make every update of this record fail with Salesforce's ``code``."""
        self.record_errors[record_id] = (code, message)

    def expire_sessions(self) -> None:
        self.tokens.clear()

    # -- HTTP entry points ---------------------------------------------------------------

    def __call__(self, request: requests.PreparedRequest) -> Reply:
        """A ``responses`` callback."""
        body = request.body.decode() if isinstance(request.body, bytes) else request.body
        return self.handle(str(request.method), str(request.url), dict(request.headers), body)

    def adapter(self) -> BaseAdapter:
        """A transport adapter serving this org, for ``session.mount("https://", …)``."""
        return _Adapter(self)

    def handle(self, method: str, url: str, headers: Mapping[str, str], body: str | None) -> Reply:
        status, reply_headers, text = self._handle(method, url, headers, body)
        # Every Salesforce response carries the server's clock (here, the org's).
        return status, {**reply_headers, "Date": format_datetime(self.org.now, usegmt=True)}, text

    def _handle(self, method: str, url: str, headers: Mapping[str, str], body: str | None) -> Reply:
        parts = urlsplit(url)
        path, query = parts.path, parse_qs(parts.query)
        kind, handler = self._route(method, path)
        self.calls[kind] += 1
        fault = self._take_fault(kind)
        if fault is not None and isinstance(fault.body, Exception):
            raise fault.body  # a dropped connection or timeout, as requests raises it
        if fault is not None:
            return self._counted(kind, _reply(fault.status, fault.body, fault.headers))
        if kind not in {"login", "metadata", "not_found"} and not self._authorised(headers):
            body_401 = [
                {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
            ]
            return _reply(401, body_401)
        return self._counted(kind, handler(path, query, body or "", headers))

    # -- plumbing ------------------------------------------------------------------------

    def _route(self, method: str, path: str) -> tuple[str, Callable[..., Reply]]:
        data = f"/services/data/v{self.api_version}/"
        rest = path[len(data) :] if path.startswith(data) else None
        table: list[tuple[str, str, str, Callable[..., Reply]]] = [
            ("POST", r"/services/Soap/u/.*", "login", self._soap_login),
            ("POST", r"/services/oauth2/token", "login", self._token_login),
            ("POST", r"/services/Soap/m/.*", "metadata", self._metadata),
        ]
        for verb, pattern, kind, handler in table:
            if method == verb and re.fullmatch(pattern, path):
                return kind, handler
        if rest is None:
            return "not_found", lambda *_: _reply(404, _NOT_FOUND)
        return self._rest_route(method, rest)

    def _rest_route(self, method: str, rest: str) -> tuple[str, Callable[..., Reply]]:
        routes: list[tuple[str, str, str, Callable[..., Reply]]] = [
            ("GET", r"(query|queryAll)/?", "query", self._query),
            ("GET", r"(query|queryAll)/[\w]+-\d+", "query", self._query_more),
            ("GET", r"sobjects/\w+/describe/?", "describe", self._describe),
            ("PATCH", r"composite/sobjects/?", "collection", self._collection),
            ("POST", r"composite/sobjects/?", "collection_create", self._collection_create),
            ("POST", r"composite/?", "composite", self._composite),
            ("POST", r"jobs/query/?", "bulk_create", lambda p, q, b, h: self.bulk.create(b)),
            (
                "GET",
                r"jobs/query/\w+/?",
                "bulk_poll",
                lambda p, q, b, h: self.bulk.poll(_part(p, -1)),
            ),
            (
                "GET",
                r"jobs/query/\w+/results/?",
                "bulk_results",
                lambda p, q, b, h: self.bulk.results(_part(p, -2), q),
            ),
        ]
        for verb, pattern, kind, handler in routes:
            if method == verb and re.fullmatch(pattern, rest):
                return kind, handler
        return "not_found", lambda *_: _reply(404, _NOT_FOUND)

    def _take_fault(self, kind: str) -> Fault | None:
        for fault in self._faults:
            if fault.kind == kind and fault.times > 0:
                fault.times -= 1
                return fault
        return None

    def _authorised(self, headers: Mapping[str, str]) -> bool:
        auth = next((v for k, v in headers.items() if k.lower() == "authorization"), "")
        return auth.startswith("Bearer ") and auth[7:] in self.tokens

    def _counted(self, kind: str, reply: Reply) -> Reply:
        """Count a REST call against the daily limit and report usage, like Salesforce."""
        if kind in {"login", "metadata", "not_found"}:
            return reply
        if self.api_used >= self.daily_limit:
            body = [
                {"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}
            ]
            reply = _reply(403, body)
        else:
            self.api_used += 1
        status, headers, text = reply
        return (
            status,
            {**headers, "Sforce-Limit-Info": f"api-usage={self.api_used}/{self.daily_limit}"},
            text,
        )

    def _new_token(self) -> str:
        token = f"00D000000000001!fake-{next(self._seq)}"
        self.tokens.add(token)
        return token

    # -- login ---------------------------------------------------------------------------

    def _soap_login(self, path: str, query: Any, body: str, headers: Any) -> Reply:
        user, secret = soap_credentials(body)
        if self.credentials.get(user) != secret:
            return 500, {"Content-Type": "text/xml"}, login_fault()
        token = self._new_token()
        return (
            200,
            {"Content-Type": "text/xml"},
            login_response(token, self.instance_url, self.api_version),
        )

    def _token_login(self, path: str, query: Any, body: str, headers: Any) -> Reply:
        form = {k: v[0] for k, v in parse_qs(body).items()}
        claims = _jwt_claims(form.get("assertion", ""))
        if claims.get("iss") != self.consumer_key or claims.get("sub") not in self.credentials:
            return _reply(
                400,
                {
                    "error": "invalid_grant",
                    "error_description": "user hasn't approved this consumer",
                },
            )
        token = self._new_token()
        return _reply(
            200,
            {
                "access_token": token,
                "scope": "api",
                "instance_url": self.instance_url,
                "id": "https://login.salesforce.com/id/00D000000000001/005000000000001",
                "token_type": "Bearer",
            },
        )

    def _metadata(self, path: str, query: Any, body: str, headers: Any) -> Reply:
        status, envelope = metadata_response(self.org, body, self.metadata)
        return status, {"Content-Type": "text/xml"}, envelope

    # -- query ---------------------------------------------------------------------------

    def _query(
        self, path: str, query: Mapping[str, list[str]], body: str, headers: Mapping[str, str]
    ) -> Reply:
        include_deleted = "/queryAll" in path
        try:
            parsed = parse_soql(query.get("q", [""])[0])
            matched = self.org.matching(parsed, include_deleted=include_deleted)
        except SoqlError as exc:
            return _reply(400, [{"message": str(exc), "errorCode": exc.code}])
        locator = f"01g{next(self._seq):015d}"
        self._locators[locator] = (parsed, matched)
        return self._page(locator, 0, _batch_size(headers), include_deleted)

    def _query_more(self, path: str, query: Any, body: str, headers: Mapping[str, str]) -> Reply:
        locator, offset = path.rsplit("/", 1)[1].split("-")
        if locator not in self._locators:
            return _reply(
                400, [{"message": "invalid query locator", "errorCode": "INVALID_QUERY_LOCATOR"}]
            )
        return self._page(locator, int(offset), _batch_size(headers), "/queryAll/" in path)

    def _page(self, locator: str, offset: int, size: int, include_deleted: bool) -> Reply:
        parsed, matched = self._locators[locator]
        chunk = matched[offset : offset + size]
        records = [self.org.project(parsed.sobject, r, parsed.fields) for r in chunk]
        done = offset + size >= len(matched)
        body: dict[str, Any] = {"totalSize": len(matched), "done": done, "records": records}
        if done:
            del self._locators[locator]
        else:
            resource = "queryAll" if include_deleted else "query"
            body["nextRecordsUrl"] = (
                f"/services/data/v{self.api_version}/{resource}/{locator}-{offset + size}"
            )
        return _reply(200, body)

    def _describe(self, path: str, query: Any, body: str, headers: Any) -> Reply:
        sobject = path.rstrip("/").split("/")[-2]
        if sobject not in self.org.schema:
            return _reply(404, _NOT_FOUND)
        fields = [f.describe() for f in self.org.schema[sobject].values()]
        return _reply(
            200,
            {
                "name": sobject,
                "label": sobject,
                "queryable": True,
                "updateable": True,
                "fields": fields,
            },
        )

    # -- writes --------------------------------------------------------------------------

    def _collection(self, path: str, query: Any, body: str, headers: Any) -> Reply:
        return self._apply_collection(json.loads(body))

    def _apply_collection(self, payload: Mapping[str, Any]) -> Reply:
        records = payload.get("records", [])
        if len(records) > 200:
            return _reply(
                400,
                [{"message": "Exceeded max size limit of 200", "errorCode": "TOO_MANY_RECORDS"}],
            )
        return _reply(200, [apply_update(self.org, r, self.record_errors) for r in records])

    def _collection_create(self, path: str, query: Any, body: str, headers: Any) -> Reply:
        return self._apply_create(json.loads(body))

    def _apply_create(self, payload: Mapping[str, Any]) -> Reply:
        records = payload.get("records", [])
        if len(records) > 200:
            return _reply(
                400,
                [{"message": "Exceeded max size limit of 200", "errorCode": "TOO_MANY_RECORDS"}],
            )
        results = []
        for record in records:
            refused = next(
                (
                    error
                    for (name, value), error in self.create_errors.items()
                    if record.get(name) == value
                ),
                None,
            )
            if refused is not None:
                error = {"statusCode": refused[0], "message": refused[1], "fields": []}
                results.append({"success": False, "errors": [error]})
                continue
            results.append(apply_create(self.org, record, self.unique_fields))
        return _reply(200, results)

    def _composite(self, path: str, query: Any, body: str, headers: Any) -> Reply:
        payload = json.loads(body)
        subrequests = payload.get("compositeRequest", [])
        collections = [s for s in subrequests if "composite/sobjects" in s.get("url", "")]
        queries = [s for s in subrequests if _is_query(s)]
        if len(subrequests) > 25 or len(collections) + len(queries) > 5:
            return _reply(
                400,
                [
                    {
                        "message": "Composite request limits exceeded",
                        "errorCode": "INVALID_API_INPUT",
                    }
                ],
            )
        # Told apart for tests: Composite requests that write, and those that read.
        self.calls["composite_write" if collections else "composite_read"] += 1
        answers: list[dict[str, Any]] = []
        for sub in subrequests:
            answers.append(self._subrequest(sub, answers))
        return _reply(200, {"compositeResponse": answers})

    def _subrequest(self, sub: Mapping[str, Any], earlier: list[dict[str, Any]]) -> dict[str, Any]:
        ref = sub.get("referenceId")
        fault = self._take_fault("subrequest")
        url, problem = _resolve(str(sub.get("url", "")), earlier)
        if fault is not None:
            status, body = fault.status, fault.body
        elif self.refuse_composite:
            status, body = 404, _NOT_FOUND
        elif problem is not None:
            status, body = 400, [{"errorCode": "PROCESSING_HALTED", "message": problem}]
        elif sub.get("method") == "PATCH" and "composite/sobjects" in url:
            status, _, text = self._apply_collection(sub.get("body", {}))
            body = json.loads(text)
        elif sub.get("method") == "GET" and _is_query(sub):
            self.subrequests["query"] += 1
            status, body = self._query_subrequest(url, sub.get("httpHeaders") or {})
        elif sub.get("method") == "POST" and "composite/sobjects" in sub.get("url", ""):
            status, _, text = self._apply_create(sub.get("body", {}))
            body = json.loads(text)
        else:
            status, body = 404, _NOT_FOUND
        return {"body": body, "httpHeaders": {}, "httpStatusCode": status, "referenceId": ref}

    def _query_subrequest(self, url: str, headers: Mapping[str, str]) -> tuple[int, Any]:
        parts = urlsplit(url)
        data = f"/services/data/v{self.api_version}/"
        rest = parts.path[len(data) :] if parts.path.startswith(data) else ""
        if re.fullmatch(r"(query|queryAll)/?", rest):
            status, _, text = self._query(parts.path, parse_qs(parts.query), "", headers)
        elif re.fullmatch(r"(query|queryAll)/[\w]+-\d+", rest):
            status, _, text = self._query_more(parts.path, {}, "", headers)
        else:
            return 404, _NOT_FOUND
        return status, json.loads(text)


def _is_query(sub: Mapping[str, Any]) -> bool:
    """A query operation: Query, QueryAll or a next page of either (by URL or reference)."""
    url = str(sub.get("url", ""))
    return "/query" in url or "nextRecordsUrl}" in url


def _resolve(url: str, earlier: list[dict[str, Any]]) -> tuple[str, str | None]:
    """``url`` with ``@{ref.field}`` replaced from an earlier answer, or why it cannot be."""
    match = re.search(r"@\{(\w+)\.(\w+)\}", url)
    if match is None:
        return url, None
    ref, name = match[1], match[2]
    answer = next((a for a in earlier if a.get("referenceId") == ref), None)
    body = answer.get("body") if answer is not None else None
    value = body.get(name) if isinstance(body, dict) else None
    if answer is None or answer.get("httpStatusCode", 500) >= 300 or value is None:
        return url, (
            f"Invalid reference specified. No value for {name} found in {ref}. "
            f"Provided referenceId ('{ref}') must be a previous subrequest's."
        )
    return url[: match.start()] + str(value) + url[match.end() :], None


def _part(path: str, index: int) -> str:
    return path.rstrip("/").split("/")[index]


def _batch_size(headers: Mapping[str, str]) -> int:
    options = next((v for k, v in headers.items() if k.lower() == "sforce-query-options"), "")
    match = re.search(r"batchSize=(\d+)", options)
    return max(200, min(2000, int(match[1]))) if match else 2000


def _jwt_claims(assertion: str) -> dict[str, Any]:
    try:
        payload = assertion.split(".")[1]
        decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        claims = json.loads(decoded)
    except (IndexError, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


class _Adapter(BaseAdapter):
    """Serves a ``FakeSalesforce`` as a requests transport (no sockets)."""

    def __init__(self, fake: FakeSalesforce) -> None:
        super().__init__()
        self._fake = fake

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        status, headers, text = self._fake(request)
        response = requests.Response()
        response.status_code = status
        response.headers.update(headers)
        response._content = text.encode()  # how requests builds a response
        response.encoding = "utf-8"
        response.url = str(request.url)
        response.request = request
        return response

    def close(self) -> None:
        """Nothing to release."""
