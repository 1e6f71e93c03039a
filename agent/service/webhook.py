"""``POST /webhooks/responses``: survey responses pushed by a survey tool, stored before the 2xx.

The body is one JSON object (one response) or an array of them, with DOMAIN.md's
response fields. The request is checked in this order, each failure answered with a
4xx whose JSON ``error`` says what to fix:

- 503 no secret configured; 413 body too large; 401 signature or timestamp wrong
  (``agent.service.signing``); 415 not JSON; 400 not parseable or not objects, or nested
  deeper than JSON responses ever are (naming the record and field);
- 422 a field has the wrong type or value, or holds text that is not Unicode (a lone
  surrogate escape such as ``"\\ud800"``): ``problems`` lists each record's position,
  field, reason (DOMAIN.md's rejection reasons, ``invalid_type``, ``invalid_text``) and
  message; nothing is stored;
- 409 a response id was stored before with different content; nothing is stored;
- 503 with ``Retry-After`` the state database could not take the responses now: it is
  unreachable, or another replica holds the rows the store needs (a paused or hung
  agent's open transaction) for longer than ``LOCK_WAIT_SECONDS``; the transaction is
  rolled back (were the connection lost while committing, it may have been stored) and
  the sender sends the same request again: a repeat is recognised (see below).

Otherwise every response is stored in one transaction (an exact repeat is counted
and ignored: the endpoint is idempotent on ``response_id``) and only then the answer
is 200. ``within`` runs in that transaction once the new responses are added (on a
standby it tells the leader of them, ``agent.service.wake``): should it fail, nothing
is stored and the answer is 503 with ``Retry-After``, as for a database that cannot
take them. ``on_stored`` is told of the new responses: on the leader, the answers worker
decides their alerts at once (``agent.service.answers``). Should it fail, the answer is
still 200 (the responses are stored, a resend would be a repeat) and the failure logged.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.exc import InterfaceError, OperationalError

from agent.config.service import WebhookSettings
from agent.core.models import Response, printable, reject_value
from agent.core.timeutil import utcnow
from agent.service.signing import SignatureError, verify
from agent.service.telemetry import RESPONSES_RECEIVED, WEBHOOK_REQUESTS
from agent.sources.ingest import (
    DUPLICATE_RESPONSE_ID,
    FUTURE_SUBMITTED_AT,
    INVALID_SCORE,
    INVALID_SUBMITTED_AT,
    MISSING_RESPONSE_ID,
    accept_rows,
)
from agent.state.records import AddResult
from agent.state.store import StateStore
from agent.state.tx import StateTx

__all__ = ["LOCK_WAIT_SECONDS", "PATH", "RETRY_AFTER_SECONDS", "Reply", "WebhookHandler"]

PATH = "/webhooks/responses"
#: The longest the store waits for rows another session holds before answering 503: a
#: busy leader's write is over well within it, a paused agent's transaction is not.
LOCK_WAIT_SECONDS = 5.0
#: What a 503 asks the sender to wait before it sends again (the ``Retry-After`` header).
RETRY_AFTER_SECONDS = 5
_log = structlog.get_logger(__name__)

_REASONS: dict[str, tuple[str, str]] = {
    MISSING_RESPONSE_ID: ("response_id", "is missing or empty"),
    DUPLICATE_RESPONSE_ID: (
        "response_id",
        "repeats an earlier record of this request with different content",
    ),
    INVALID_SCORE: ("score", "must be an integer from 0 to 10"),
    INVALID_SUBMITTED_AT: (
        "submitted_at",
        "must be an ISO 8601 timestamp YYYY-MM-DDTHH:MM:SS[.ffffff][Z|+HH:MM]",
    ),
    FUTURE_SUBMITTED_AT: ("submitted_at", "lies in the future"),
}
#: Optional fields and the JSON types they may have (null is always allowed).
_OPTIONAL: dict[str, tuple[type, ...]] = {
    "email": (str,),
    "driver": (str,),
    "comment": (str,),
    "account_hint": (str, int),
    "loop_closed_at": (str,),
}


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: dict[str, Any]
    headers: tuple[tuple[str, str], ...] = ()

    def json(self) -> bytes:
        return json.dumps(self.body).encode("utf-8")


class _Rollback(Exception):  # noqa: N818  # control flow: undo the transaction
    def __init__(self, result: AddResult) -> None:
        self.result = result


class _WithinError(Exception):
    """``within`` failed: the transaction is rolled back, nothing of the request stored."""

    def __init__(self, cause: Exception) -> None:
        super().__init__(str(cause))
        self.cause = cause


class WebhookHandler:
    """Verifies, validates and stores pushed responses (framework-free)."""

    def __init__(
        self,
        settings: WebhookSettings,
        store: StateStore,
        *,
        on_stored: Callable[[Sequence[Response]], None] = lambda _added: None,
        within: Callable[[StateTx, Sequence[Response]], None] | None = None,
        clock: Callable[[], datetime] = utcnow,
        wall: Callable[[], float] = time.time,
        lock_wait: float = LOCK_WAIT_SECONDS,
    ) -> None:
        self.settings = settings
        self.store = store
        self.on_stored = on_stored
        #: Runs in the storing transaction after new responses were added; its failure
        #: rolls them back (the sender is asked to send again).
        self.within = within
        self.lock_wait = lock_wait
        self._clock = clock
        self._wall = wall

    def handle(self, headers: Mapping[str, str], body: bytes) -> Reply:
        reply = self._handle(headers, body)
        WEBHOOK_REQUESTS.labels(status=str(reply.status)).inc()
        if reply.status >= 400:
            _log.info("webhook_refused", status=reply.status, error=reply.body.get("error"))
        return reply

    def _handle(self, headers: Mapping[str, str], body: bytes) -> Reply:
        secret = self.settings.secret
        if secret is None:
            return _error(503, "the webhook is not configured: set AX_WEBHOOK__SECRET")
        if len(body) > self.settings.max_body_bytes:
            return _error(413, f"body larger than {self.settings.max_body_bytes} bytes")
        try:
            verify(
                secret.get_secret_value(),
                headers,
                body,
                now=self._wall(),
                tolerance=self.settings.tolerance_seconds,
            )
        except SignatureError as exc:
            return _error(401, str(exc))
        content_type = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
        if content_type.split(";")[0].strip().lower() != "application/json":
            return _error(415, "send the responses as application/json")
        records = _records(body, self.settings.max_responses)
        if isinstance(records, Reply):
            return records
        return self._accept(records)

    def _accept(self, records: list[dict[str, Any]]) -> Reply:
        problems = _text_problems(records)
        if problems:  # nothing more can be said of such a record: its text is unusable
            first = problems[0]
            message = f"{first['field']} {first['message']} (record {first['position']})"
            return Reply(422, {"error": message, "problems": problems})
        problems = _type_problems(records)
        responses, rejected = accept_rows(
            records, self.settings.source, self._clock(), json_mode=True
        )
        problems += [_problem(r.position, r.reason, r.value) for r in rejected]
        if problems:
            problems.sort(key=lambda p: (p["position"], p["field"]))
            first = problems[0]
            message = f"{first['field']} {first['message']} (record {first['position']})"
            return Reply(422, {"error": message, "problems": problems})
        try:
            result = self._store(responses)
        except _Rollback as conflict:
            ids = sorted({c.response.response_id for c in conflict.result.conflicts})
            RESPONSES_RECEIVED.labels(channel="webhook", outcome="conflicting").inc(len(ids))
            return _error(
                409,
                f"response_id {', '.join(ids)} was received before with different content; "
                "the first answer stands",
                response_ids=ids,
            )
        except (OperationalError, InterfaceError) as exc:
            return _unavailable(exc)
        except _WithinError as exc:
            return _not_told(exc)
        return self._stored(result)

    def _store(self, responses: list[Response]) -> AddResult:
        with self.store.transaction(lock_timeout=self.lock_wait) as tx:
            result = tx.add_responses(responses)
            if result.conflicts:
                raise _Rollback(result)
            if self.within is not None and result.added:
                try:
                    self.within(tx, result.added)
                except (OperationalError, InterfaceError):
                    raise  # the database: answered as any store failure
                except Exception as exc:
                    raise _WithinError(exc) from exc
        return result

    def _stored(self, result: AddResult) -> Reply:
        added = list(result.added)
        RESPONSES_RECEIVED.labels(channel="webhook", outcome="accepted").inc(len(added))
        RESPONSES_RECEIVED.labels(channel="webhook", outcome="repeated").inc(result.duplicates)
        _log.info("webhook_stored", accepted=len(added), repeated=result.duplicates)
        if added:
            try:
                self.on_stored(added)
            except Exception as exc:  # stored already: a 5xx would only make the sender resend
                # Committed already, and decided all the same: the alerts job evaluates
                # every rule over the figures of every stored response, and the agent's
                # hook (``AgentProcess._received``), should noting them fail, has those
                # figures read again in full and the leader's alerts job run.
                _log.warning(
                    "webhook_stored_hook_failed",
                    accepted=len(added),
                    error=" ".join(f"{type(exc).__name__}: {exc}".split())[:500],
                    note="the answers are stored; the next cycle decides them",
                )
        return Reply(
            200,
            {
                "accepted": len(added),
                "repeated": result.duplicates,
                "response_ids": [r.response_id for r in added],
            },
        )


def _error(status: int, message: str, **extra: Any) -> Reply:
    return Reply(status, {"error": message, **extra})


def _unavailable(exc: OperationalError | InterfaceError) -> Reply:
    """The database did not take the responses (rolled back): the sender tries again."""
    _log.warning("webhook_store_unavailable", error=str(exc.orig).strip()[:500])
    message = (
        "the state database cannot take responses right now (unreachable, or another agent "
        f"holds the rows it needs): send the same request again in {RETRY_AFTER_SECONDS} s, "
        "a repeat is recognised"
    )
    return _retry_later(message)


def _retry_later(message: str) -> Reply:
    """503 with ``Retry-After``: nothing was stored, the same request is to be sent again."""
    reply = _error(503, message, retry_after=RETRY_AFTER_SECONDS)
    return Reply(reply.status, reply.body, (("Retry-After", str(RETRY_AFTER_SECONDS)),))


def _not_told(exc: _WithinError) -> Reply:
    """The leader could not be told of the responses, so none was stored: send again."""
    cause = exc.cause
    _log.warning(
        "webhook_store_not_told",
        error=" ".join(f"{type(cause).__name__}: {cause}".split())[:500],
    )
    message = (
        "the responses could not be stored together with the notice to the leading agent, "
        f"so none was stored: send the same request again in {RETRY_AFTER_SECONDS} s"
    )
    return _retry_later(message)


def _records(body: bytes, limit: int) -> list[dict[str, Any]] | Reply:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        return _error(400, f"the body is not valid JSON: {exc}")
    except RecursionError:
        position, name = _too_deep(body)
        return _error(
            400,
            f"field {name} of record {position} is nested too deeply; "
            "response fields are plain values",
            position=position,
            field=name,
        )
    records = data if isinstance(data, list) else [data]
    if not records:
        return _error(400, "the body holds no response")
    if len(records) > limit:
        return _error(413, f"at most {limit} responses per request, got {len(records)}")
    bad = [i for i, r in enumerate(records, start=1) if not isinstance(r, dict)]
    if bad:
        return _error(400, f"record {bad[0]} is not a JSON object; send objects of response fields")
    return records


#: Deeper than any response object: nesting beyond this is named, not parsed.
_DEPTH = 32


def _too_deep(body: bytes) -> tuple[int, str]:
    """Where a body too deep for the JSON parser goes too deep: the 1-based record and
    the field of that record (``(record)`` when the record itself is the nesting)."""
    text = body.decode("utf-8", "replace")
    top_list = text.lstrip().startswith("[")
    record_depth = 2 if top_list else 1
    depth, record, key, last, index = 0, 0 if top_list else 1, "(record)", "", 0
    while index < len(text):
        char = text[index]
        if char == '"':
            end = index + 1
            while end < len(text) and text[end] != '"':
                end += 2 if text[end] == "\\" else 1
            last = text[index + 1 : end]
            index = end
        elif char == ":" and depth == record_depth:
            key = _printable(last)
        elif char in "[{":
            depth += 1
            if depth == record_depth:
                record += 1
                key = "(record)"
            if depth > _DEPTH:
                break
        elif char in "]}":
            depth -= 1
        index += 1
    return max(record, 1), key


def _printable(name: str) -> str:
    return printable(name[:80])


def _text_problems(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Fields whose text is not Unicode (lone surrogates): they can be neither stored nor shown."""
    problems: list[dict[str, Any]] = []
    for position, record in enumerate(records, start=1):
        for name, value in record.items():
            bad_name = not _unicode(name)
            if bad_name or (isinstance(value, str) and not _unicode(value)):
                problems.append(
                    {
                        "position": position,
                        "field": _printable(name),
                        "reason": "invalid_text",
                        "value": reject_value(value if not bad_name else name),
                        "message": ("has a name" if bad_name else "holds text")
                        + " that is not valid Unicode (a lone surrogate such as \\ud800)",
                    }
                )
    return problems


def _unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _type_problems(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    problems: list[dict[str, Any]] = []
    for position, record in enumerate(records, start=1):
        for name, types in _OPTIONAL.items():
            value = record.get(name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, types)):
                kinds = " or ".join("a string" if t is str else "an integer" for t in types)
                problems.append(
                    {
                        "position": position,
                        "field": name,
                        "reason": "invalid_type",
                        "message": f"must be {kinds} or null",
                        "value": reject_value(value),
                    }
                )
    return problems


def _problem(position: int, reason: str, value: str) -> dict[str, Any]:
    field, message = _REASONS.get(reason, ("(record)", "is not a response object"))
    return {
        "position": position,
        "field": field,
        "reason": reason,
        "message": message,
        "value": value,
    }
