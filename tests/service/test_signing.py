"""Webhook signatures: HMAC-SHA256 over timestamp and body, a replay window, rotation."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from agent.service.signing import SignatureError, sign, signature, verify

SECRET = "whsec-test-1234"
BODY = b'{"response_id": "r1", "score": 3}'
NOW = 1_800_000_000.0


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    expected = hmac.new(SECRET.encode(), b"1800000000." + BODY, hashlib.sha256).hexdigest()
    assert signature(SECRET, "1800000000", BODY) == "sha256=" + expected
    assert sign(SECRET, BODY, NOW) == {
        "X-AX-Timestamp": "1800000000",
        "X-AX-Signature": "sha256=" + expected,
    }


def test_a_signed_request_verifies_with_headers_in_any_case() -> None:
    headers = {k.lower(): v for k, v in sign(SECRET, BODY, NOW).items()}
    verify(SECRET, headers, BODY, now=NOW + 10, tolerance=300)


@pytest.mark.parametrize(
    ("secret", "body", "now", "message"),
    [
        ("other-secret", BODY, NOW, "does not match"),
        (SECRET, BODY + b" ", NOW, "does not match"),
        (SECRET, BODY, NOW + 301, "more than 300 s"),
        (SECRET, BODY, NOW - 301, "more than 300 s"),
    ],
)
def test_wrong_secret_changed_body_and_old_requests_are_refused(
    secret: str, body: bytes, now: float, message: str
) -> None:
    headers = sign(secret, BODY, NOW)
    with pytest.raises(SignatureError, match=message):
        verify(SECRET, headers, body, now=now, tolerance=300)


def test_missing_or_malformed_headers_are_refused() -> None:
    with pytest.raises(SignatureError, match="missing X-AX-Timestamp or X-AX-Signature"):
        verify(SECRET, {}, BODY, now=NOW, tolerance=300)
    headers = {**sign(SECRET, BODY, NOW), "X-AX-Timestamp": "2027-01-01T00:00:00Z"}
    with pytest.raises(SignatureError, match="Unix time in whole seconds"):
        verify(SECRET, headers, BODY, now=NOW, tolerance=300)


def test_a_sender_rotating_its_secret_may_send_two_signatures() -> None:
    old = sign("old-secret", BODY, NOW)["X-AX-Signature"]
    new = sign(SECRET, BODY, NOW)["X-AX-Signature"]
    headers = {"X-AX-Timestamp": str(int(NOW)), "X-AX-Signature": f"{old}, {new}"}
    verify(SECRET, headers, BODY, now=NOW, tolerance=300)
