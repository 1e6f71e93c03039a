"""Pure pieces: value formats, cursor arithmetic, error classification."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
import urllib3.exceptions
from hubspot.crm.objects.exceptions import ApiException
from hypothesis import given
from hypothesis import strategies as st

from connectors.common.errors import FatalError, RateLimitedError, RetriableError
from connectors.hubspot.cursor import advance, format_cursor, parse_cursor, to_millis, window
from connectors.hubspot.errors import HubSpotRequestError, classify, rate_limit_pause
from connectors.hubspot.values import format_value, parse_value

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "kind", "wire"),
    [
        (None, "number", ""),
        (True, "boolean", "true"),
        (False, "boolean", "false"),
        (42, "integer", "42"),
        (71.0, "number", "71"),
        (33.3, "number", "33.3"),
        (1e-05, "number", "0.00001"),
        (1e20, "number", "100000000000000000000"),
        ("12.50", "number", "12.5"),
        (("executive", "frontline"), "multi", "executive;frontline"),
        ((), "multi", ""),
        ("at_risk", "enum", "at_risk"),
        (datetime(2026, 1, 2, 3, 4, 5, 678999, tzinfo=UTC), "datetime", "2026-01-02T03:04:05.678Z"),
        (
            datetime(2026, 1, 2, 5, 4, 5, tzinfo=timezone(timedelta(hours=2))),
            "datetime",
            "2026-01-02T03:04:05.000Z",
        ),
    ],
)
def test_format_value(value: object, kind: str, wire: str) -> None:
    assert format_value(value, kind) == wire  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("wire", "kind", "value"),
    [
        ("", "number", None),
        (None, "boolean", None),
        ("  7 ", "integer", 7),
        ("7.5", "integer", 7.5),
        ("abc", "number", None),
        ("nan", "number", None),
        ("1,250.5", "number", 1250.5),
        ("true", "boolean", True),
        ("false", "boolean", False),
        ("maybe", "boolean", None),
        ("management;executive;", "multi", ("executive", "management")),
        ("1735787045678", "datetime", datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)),
        ("2026-01-02T03:04:05Z", "datetime", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2026-01-02T03:04:05", "datetime", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("someday", "datetime", None),
        ("healthy", "enum", "healthy"),
    ],
)
def test_parse_value(wire: str | None, kind: str, value: object) -> None:
    assert parse_value(wire, kind) == value  # type: ignore[arg-type]


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e12, max_value=1e12))
def test_numbers_survive_the_round_trip(number: float) -> None:
    assert parse_value(format_value(number, "number"), "number") == number


@given(
    st.datetimes(
        min_value=datetime(1971, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC)
    )
)
def test_datetimes_survive_the_round_trip_to_the_millisecond(when: datetime) -> None:
    expected = when.replace(microsecond=when.microsecond // 1000 * 1000)
    assert parse_value(format_value(when, "datetime"), "datetime") == expected
    assert parse_cursor(format_cursor(when)) == expected


def test_window_reaches_back_by_the_overlap_and_up_to_the_start() -> None:
    span = window(T0, T0 + timedelta(hours=1), timedelta(minutes=5))
    assert (span.low, span.high) == (T0 - timedelta(minutes=5), T0 + timedelta(hours=1))
    skewed = window(T0 + timedelta(hours=2), T0, timedelta(minutes=5))
    assert skewed.low == skewed.high == T0


def test_advance_takes_the_latest_seen_capped_at_the_start() -> None:
    start = T0 + timedelta(hours=1)
    assert advance(
        T0, [T0 + timedelta(minutes=3), None, T0 + timedelta(minutes=9)], start
    ) == T0 + timedelta(minutes=9)
    assert advance(T0, [], start) == T0
    assert advance(T0, [T0 - timedelta(days=1)], start) == T0
    assert advance(None, [], start) == start
    assert advance(T0, [start + timedelta(seconds=1)], start) == start


def test_millis_are_exact() -> None:
    assert to_millis(datetime(2026, 1, 1, 0, 0, 0, 1000, tzinfo=UTC)) == "1767225600001"


def _api_exception(
    status: int, headers: dict[str, str] | None = None, body: str = ""
) -> ApiException:
    exc = ApiException(status=status, reason="x")
    exc.headers = headers or {}
    exc.body = body
    return exc


def test_classification_by_status() -> None:
    limited = classify(_api_exception(429, {"Retry-After": "3"}))
    assert isinstance(limited, RateLimitedError)
    assert limited.retry_after == 3.0
    assert isinstance(classify(_api_exception(503)), RetriableError)
    assert isinstance(classify(_api_exception(408)), RetriableError)
    refused = classify(
        _api_exception(400, body='{"category": "VALIDATION_ERROR", "message": "bad"}')
    )
    assert isinstance(refused, HubSpotRequestError)
    assert refused.category == "VALIDATION_ERROR"
    assert str(refused) == "hubspot: HTTP 400 VALIDATION_ERROR: bad"
    assert isinstance(classify(_api_exception(404)), FatalError)
    assert isinstance(
        classify(urllib3.exceptions.ReadTimeoutError(None, "/", "timed out")), RetriableError
    )
    assert classify(KeyError("not ours")) is None


def test_pauses_from_headers() -> None:
    assert rate_limit_pause({"retry-after": "2.5"}) == 2.5
    later = datetime.now(UTC) + timedelta(seconds=30)
    assert 25 < (rate_limit_pause({"Retry-After": format_datetime(later, usegmt=True)}) or 0) <= 30
    exhausted = {
        "X-HubSpot-RateLimit-Remaining": "0",
        "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
    }
    assert rate_limit_pause(exhausted) == 10.0
    assert rate_limit_pause({"X-HubSpot-RateLimit-Secondly-Remaining": "0"}) == 1.0
    assert rate_limit_pause({"X-HubSpot-RateLimit-Remaining": "42"}) is None


def test_messages_read_well_with_or_without_a_category() -> None:
    plain = classify(_api_exception(404, body='{"message": "Not found", "correlationId": "abc"}'))
    assert str(plain) == "hubspot: HTTP 404: Not found (correlation id abc)"
    assert str(classify(_api_exception(400))) == "hubspot: HTTP 400"
