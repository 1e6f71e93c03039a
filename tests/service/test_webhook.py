"""POST /webhooks/responses through the real HTTP server: signed, validated, stored once."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError
from structlog.testing import capture_logs

from agent.core.models import Response, reject_value
from agent.service.health import Health
from agent.service.signing import sign
from agent.service.webhook import PATH, RETRY_AFTER_SECONDS, WebhookHandler
from agent.state.store import StateStore
from agent.state.tx import StateTx
from tests.service.httpkit import call, post_signed, serving, webhook_settings

SECRET = "whsec-test-1234"
WHEN = (datetime.now(UTC) - timedelta(hours=1)).isoformat(timespec="seconds")


def _response(rid: str = "r1", score: object = 3, **fields: object) -> dict[str, object]:
    return {
        "response_id": rid,
        "email": "ann@alpha.com",
        "score": score,
        "submitted_at": WHEN,
        **fields,
    }


@pytest.fixture
def stored() -> list[Response]:
    return []


@pytest.fixture
def base(store: StateStore, stored: list[Response]) -> Iterator[str]:
    hook = WebhookHandler(webhook_settings(SECRET), store, on_stored=stored.extend)
    with serving(Health(store, []), hook) as url:
        yield url


def test_a_signed_response_is_stored_before_the_answer(
    base: str, store: StateStore, stored: list[Response]
) -> None:
    status, body = post_signed(base, _response(comment="Slow support"), SECRET)
    assert (status, body) == (200, {"accepted": 1, "repeated": 0, "response_ids": ["r1"]})
    assert store.has_response("webhook", "r1")
    (saved,) = store.load_responses()
    assert (saved.score, saved.comment, saved.source) == (3, "Slow support", "webhook")
    assert [r.response_id for r in stored] == ["r1"]  # the detractor hook saw it


def test_a_retried_delivery_is_idempotent_on_response_id(
    base: str, store: StateStore, stored: list[Response]
) -> None:
    post_signed(base, _response(), SECRET)
    status, body = post_signed(base, _response(), SECRET)
    assert (status, body["accepted"], body["repeated"]) == (200, 0, 1)
    assert store.count_responses() == 1
    assert len(stored) == 1


def test_the_same_id_with_other_content_is_a_conflict_and_nothing_is_stored(
    base: str, store: StateStore
) -> None:
    post_signed(base, _response("r1", 3), SECRET)
    status, body = post_signed(base, [_response("r2", 9), _response("r1", 10)], SECRET)
    assert status == 409
    assert body["response_ids"] == ["r1"]
    assert "received before with different content" in body["error"]
    assert not store.has_response("webhook", "r2")  # the batch is all or nothing


def test_a_batch_is_accepted_as_a_json_array(base: str, store: StateStore) -> None:
    status, body = post_signed(base, [_response(f"r{i}", i) for i in range(5)], SECRET)
    assert (status, body["accepted"]) == (200, 5)
    assert store.count_responses() == 5


@pytest.mark.parametrize(
    ("record", "field", "reason"),
    [
        (_response(score=11), "score", "invalid_score"),
        (_response(score="7.5"), "score", "invalid_score"),
        (_response(score=None), "score", "invalid_score"),
        (_response(submitted_at="yesterday"), "submitted_at", "invalid_submitted_at"),
        (
            _response(submitted_at=(datetime.now(UTC) + timedelta(days=2)).isoformat()),
            "submitted_at",
            "future_submitted_at",
        ),
        ({"score": 3, "submitted_at": WHEN}, "response_id", "missing_response_id"),
        (_response(email=42), "email", "invalid_type"),
        (_response(comment=["a"]), "comment", "invalid_type"),
    ],
)
def test_invalid_fields_are_refused_with_422_naming_the_field(
    base: str, store: StateStore, record: dict[str, object], field: str, reason: str
) -> None:
    status, body = post_signed(base, [_response("ok"), record], SECRET)
    assert status == 422
    assert body["problems"][0] == {
        "position": 2,
        "field": field,
        "reason": reason,
        "message": body["problems"][0]["message"],
        "value": reject_value(record.get(field)),  # the offending value, as sent
    }
    assert body["error"].startswith(f"{field} ")
    assert body["error"].endswith("(record 2)")
    assert store.count_responses() == 0  # the valid record is not stored either


def test_a_repeat_with_other_content_inside_one_request_is_refused(base: str) -> None:
    status, body = post_signed(base, [_response("r1", 3), _response("r1", 4)], SECRET)
    assert status == 422
    assert body["problems"][0]["reason"] == "duplicate_response_id"


@pytest.mark.parametrize(
    ("kwargs", "status", "message"),
    [
        ({"raw": b"{not json"}, 400, "not valid JSON"),
        ({"raw": b"[]"}, 400, "no response"),
        ({"raw": b"[1, 2]"}, 400, "record 1 is not a JSON object"),
        ({"content_type": "text/plain"}, 415, "application/json"),
        ({"now": time.time() - 3600}, 401, "more than 300 s"),
    ],
)
def test_malformed_requests_get_a_clear_4xx(
    base: str, store: StateStore, kwargs: dict[str, object], status: int, message: str
) -> None:
    got, body = post_signed(base, _response(), SECRET, **kwargs)  # type: ignore[arg-type]
    assert got == status
    assert message in body["error"]
    assert store.count_responses() == 0


def test_unsigned_and_wrongly_signed_requests_are_refused(base: str, store: StateStore) -> None:
    status, body, _ = call(
        f"{base}/webhooks/responses", "POST", b"{}", {"Content-Type": "application/json"}
    )
    assert (status, body["error"]) == (401, "missing X-AX-Timestamp or X-AX-Signature header")
    status, body = post_signed(base, _response(), "not-the-secret")
    assert status == 401
    assert "does not match" in body["error"]
    assert store.count_responses() == 0


def test_a_body_over_the_limit_is_refused_unread(store: StateStore) -> None:
    hook = WebhookHandler(webhook_settings(SECRET, max_body_bytes=2048), store)
    with serving(Health(store, []), hook) as url:
        status, body = post_signed(url, [_response(f"r{i}") for i in range(40)], SECRET)
    assert status == 413
    assert "larger than 2048 bytes" in body["error"]


def test_too_many_responses_in_one_request_are_refused(store: StateStore) -> None:
    hook = WebhookHandler(webhook_settings(SECRET, max_responses=3), store)
    with serving(Health(store, []), hook) as url:
        status, body = post_signed(url, [_response(f"r{i}") for i in range(4)], SECRET)
    assert (status, body["error"]) == (413, "at most 3 responses per request, got 4")


def test_without_a_secret_the_endpoint_refuses_everything(store: StateStore) -> None:
    hook = WebhookHandler(webhook_settings(None), store)
    with serving(Health(store, []), hook) as url:
        status, body = post_signed(url, _response(), SECRET)
    assert status == 503
    assert "AX_WEBHOOK__SECRET" in body["error"]


def test_a_body_nested_100000_deep_is_a_400_naming_the_field(base: str, store: StateStore) -> None:
    nested = "[" * 100_000 + "]" * 100_000
    body = (
        f'[{{"response_id": "ok", "score": 9, "submitted_at": "{WHEN}"}}, '
        f'{{"response_id": "deep", "comment": {nested}}}]'
    ).encode()
    status, answer = post_signed(base, None, SECRET, raw=body)
    assert status == 400
    assert (answer["position"], answer["field"]) == (2, "comment")
    assert "field comment of record 2 is nested too deeply" in answer["error"]
    assert store.count_responses() == 0


def test_a_lone_surrogate_is_a_422_naming_the_field(base: str, store: StateStore) -> None:
    body = (
        f'{{"response_id": "r1", "email": "a@b.c", "score": 3, "submitted_at": "{WHEN}", '
        '"comment": "broken \\ud800 text"}'
    ).encode()
    status, answer = post_signed(base, None, SECRET, raw=body)
    assert status == 422
    assert answer["problems"] == [
        {
            "position": 1,
            "field": "comment",
            "reason": "invalid_text",
            "message": "holds text that is not valid Unicode (a lone surrogate such as \\ud800)",
            "value": "broken \ufffd text",
        }
    ]
    assert store.count_responses() == 0
    status, _ = post_signed(base, _response("r2"), SECRET)
    assert status == 200  # the endpoint goes on


def _raw_post(url: str, head: bytes, body_chunks: Iterator[bytes]) -> bytes:
    """Send a request as a plain client does (the whole body, then read the answer)."""
    import socket

    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head)
        for chunk in body_chunks:
            sock.sendall(chunk)  # a reset here is what the client used to see
        answer = b""
        while data := sock.recv(65536):
            answer += data
    return answer


def _ten_mb() -> Iterator[bytes]:
    for _ in range(160):
        yield b"x" * 65_536


def test_a_10_mb_body_gets_a_413_not_a_reset(store: StateStore) -> None:
    hook = WebhookHandler(webhook_settings(SECRET), store)
    with serving(Health(store, []), hook) as url:
        head = (
            "POST /webhooks/responses HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {160 * 65_536}\r\n\r\n"
        ).encode()
        answer = _raw_post(url, head, _ten_mb())
        assert answer.startswith(b"HTTP/1.1 413 ")
        assert b'"error": "body larger than 1048576 bytes"' in answer
        status, _ = post_signed(url, _response(), SECRET)
        assert status == 200  # and the server goes on


def test_a_10_mb_chunked_body_is_capped_while_read(store: StateStore) -> None:
    hook = WebhookHandler(webhook_settings(SECRET), store)
    with serving(Health(store, []), hook) as url:
        head = (
            b"POST /webhooks/responses HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n"
        )
        chunks = (b"%x\r\n%s\r\n" % (len(c), c) for c in _ten_mb())
        answer = _raw_post(url, head, iter([*chunks, b"0\r\n\r\n"]))
        assert answer.startswith(b"HTTP/1.1 413 ")
        assert b"body larger than 1048576 bytes" in answer


def test_a_client_asking_to_continue_is_answered_413_before_sending(store: StateStore) -> None:
    import socket

    hook = WebhookHandler(webhook_settings(SECRET), store)
    with serving(Health(store, []), hook) as url:
        host, port = url.removeprefix("http://").split(":")
        with socket.create_connection((host, int(port)), timeout=10) as sock:
            sock.sendall(
                b"POST /webhooks/responses HTTP/1.1\r\nHost: x\r\nContent-Type: application/json"
                b"\r\nExpect: 100-continue\r\nContent-Length: 10485760\r\n\r\n"
            )
            answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 413 ")


def _post_with_headers(url: str, payload: object) -> tuple[int, dict[str, object], dict[str, str]]:
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json", **sign(SECRET, body, time.time())}
    return call(f"{url}{PATH}", "POST", body, headers)


@pytest.mark.postgres
def test_an_answer_blocked_by_another_agents_open_transaction_is_a_quick_503(
    postgres_url: str,
) -> None:
    """Another agent (paused, hung) holds the rows every answer's write needs in an open
    transaction: the webhook answers 503 with Retry-After within its lock wait instead of
    waiting for that transaction (or failing with a 500); the sender's retry is stored."""
    with StateStore.open(postgres_url) as store, StateStore.open(postgres_url) as other:
        hook = WebhookHandler(webhook_settings(SECRET), store, lock_wait=0.3)
        with serving(Health(store, []), hook) as url:
            paused = other.engine.connect()
            try:
                transaction = paused.begin()
                paused.execute(text("UPDATE input_versions SET version = version + 1"))
                started = time.monotonic()
                status, body, headers = _post_with_headers(url, _response())
                took = time.monotonic() - started
                transaction.rollback()
            finally:
                paused.close()
            assert status == 503, body
            assert took < 3
            assert headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
            assert isinstance(body, dict)
            assert body["retry_after"] == RETRY_AFTER_SECONDS
            assert "send the same request again" in str(body["error"])
            assert not store.has_response("webhook", "r1")
            status, body, _ = _post_with_headers(url, _response())
            assert (status, body["accepted"]) == (200, 1)


def test_an_unreachable_database_is_a_503_with_retry_after(
    store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable(**_options: object) -> None:
        raise OperationalError("BEGIN", {}, ConnectionRefusedError("connection refused"))

    monkeypatch.setattr(store, "transaction", unreachable)
    hook = WebhookHandler(webhook_settings(SECRET), store)
    with serving(Health(store, []), hook) as url:
        status, body, headers = _post_with_headers(url, _response())
    assert status == 503
    assert headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
    assert isinstance(body, dict)
    assert "connection refused" not in str(body["error"])  # logged, not told to the sender


def test_a_failing_hook_after_the_commit_is_a_200_and_one_logged_line(store: StateStore) -> None:
    """The answer is stored before the hook runs: a 5xx would make the sender resend a
    stored answer (a repeat). The success status, and the hook's failure logged."""

    def failing(_added: object) -> None:
        raise RuntimeError("the answers worker is gone")

    hook = WebhookHandler(webhook_settings(SECRET), store, on_stored=failing)
    with capture_logs() as logs, serving(Health(store, []), hook) as url:
        first = post_signed(url, _response(), SECRET)
        again = post_signed(url, _response(), SECRET)
    assert first == (200, {"accepted": 1, "repeated": 0, "response_ids": ["r1"]})
    assert (again[0], again[1]["repeated"]) == (200, 1)
    assert store.count_responses() == 1
    failed = [e for e in logs if e["event"] == "webhook_stored_hook_failed"]
    assert len(failed) == 1
    assert "the answers worker is gone" in failed[0]["error"]
    assert "exc_info" not in failed[0]


def test_a_failing_hook_inside_the_transaction_stores_nothing_and_is_a_503(
    store: StateStore,
) -> None:
    """``within`` runs before the commit (a standby's notice to the leader): should it
    fail, the responses are rolled back and the sender asked to send them again; once it
    succeeds they are stored, and it ran with exactly the new ones."""
    seen: list[list[str]] = []
    failing = [True]

    def within(tx: StateTx, added: Sequence[Response]) -> None:
        assert tx.has_response("webhook", added[0].response_id)  # added, not committed
        if failing and failing.pop():
            raise RuntimeError("the notice could not be sent")
        seen.append([r.response_id for r in added])

    hook = WebhookHandler(webhook_settings(SECRET), store, within=within)
    with serving(Health(store, []), hook) as url:
        status, body, headers = _post_with_headers(url, [_response("w1"), _response("w2")])
        assert status == 503, body
        assert headers["Retry-After"] == str(RETRY_AFTER_SECONDS)
        assert isinstance(body, dict)
        assert "none was stored: send the same request again" in str(body["error"])
        assert store.count_responses() == 0
        status, body, _ = _post_with_headers(url, [_response("w1"), _response("w2")])
        assert (status, body["accepted"]) == (200, 2)
        status, body, _ = _post_with_headers(url, [_response("w1")])
        assert (status, body["repeated"]) == (200, 1)
    assert seen == [["w1", "w2"]]  # a repeat adds nothing: the hook does not run
    assert store.count_responses() == 2
