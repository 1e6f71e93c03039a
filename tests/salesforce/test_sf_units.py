"""The small pure parts: cursors, SOQL building, error classification."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
import requests

from connectors.common.errors import FatalError, RateLimitedError, RetriableError
from connectors.salesforce.cursor import advance, format_cursor, lower_bound, parse_stamp
from connectors.salesforce.errors import classify_response, error_of
from connectors.salesforce.soql import check_name, datetime_literal, in_list, quote, select

T0 = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)


def test_stamps_parse_in_both_salesforce_forms() -> None:
    assert parse_stamp("2024-05-01T12:00:00.000+0000") == T0
    assert parse_stamp("2024-05-01T12:00:00.000Z") == T0
    assert parse_stamp("2024-05-01T14:00:00+02:00") == T0


def test_cursor_format_is_utc_with_milliseconds() -> None:
    assert format_cursor(
        datetime(2024, 5, 1, 14, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    ) == ("2024-05-01T12:00:00.123Z")


def test_lower_bound_subtracts_the_overlap_and_floors_to_seconds() -> None:
    assert lower_bound(None, timedelta(minutes=5)) is None
    assert lower_bound("2024-05-01T12:00:00.900Z", timedelta(minutes=5)) == datetime(
        2024, 5, 1, 11, 55, tzinfo=UTC
    )


def test_advance_takes_the_newest_stamp_capped_at_the_read_start() -> None:
    later = T0 + timedelta(hours=1)
    assert advance(None, T0, later) == "2024-05-01T12:00:00.000Z"
    assert advance(None, later, T0) == "2024-05-01T12:00:00.000Z"  # capped
    assert advance("2024-05-01T12:00:00.000Z", None, later) == "2024-05-01T12:00:00.000Z"  # kept
    assert advance(None, None, T0) == "2024-05-01T12:00:00.000Z"  # empty org: the start
    assert advance("2024-05-01T12:00:00.000Z", T0 - timedelta(days=1), later) == (
        "2024-05-01T12:00:00.000Z"  # never backwards
    )


def test_soql_values_are_escaped_and_names_checked() -> None:
    assert quote("O'Brien\\") == "'O\\'Brien\\\\'"
    assert in_list(["a", "b'"]) == "('a', 'b\\'')"
    assert datetime_literal(T0 + timedelta(microseconds=5)) == "2024-05-01T12:00:00Z"
    assert check_name("Owner.Email") == "Owner.Email"
    for bad in ["Name, (SELECT Id FROM Contacts)", "Id FROM User --", "1Field", ""]:
        with pytest.raises(ValueError, match="not a Salesforce"):
            check_name(bad)


def test_select_deduplicates_fields_and_adds_the_cursor_condition() -> None:
    soql = select(
        "Account", ["Id", "Name", "id", "AX_NPS__c"], since=T0, where=["IsDeleted = false"]
    )
    assert soql == (
        "SELECT Id, Name, AX_NPS__c FROM Account "
        "WHERE IsDeleted = false AND SystemModstamp >= 2024-05-01T12:00:00Z"
    )


def _response(status: int, body: bytes, headers: dict[str, str] | None = None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    response._content = body
    response.headers.update(headers or {})
    return response


def test_error_bodies_of_every_shape() -> None:
    assert error_of([{"errorCode": "INVALID_FIELD", "message": "No such column"}]) == (
        "INVALID_FIELD",
        "No such column",
    )
    assert error_of(
        [{"statusCode": "ENTITY_IS_DELETED", "message": "entity is deleted", "fields": []}]
    ) == (
        "ENTITY_IS_DELETED",
        "entity is deleted",
    )
    assert error_of({"error": "invalid_grant", "error_description": "expired"}) == (
        "invalid_grant",
        "expired",
    )
    assert error_of("<html>") == (None, "")


def test_classification_by_status_and_code() -> None:
    lock = _response(400, b'[{"errorCode":"UNABLE_TO_LOCK_ROW","message":"locked"}]')
    limit = _response(403, b'[{"errorCode":"REQUEST_LIMIT_EXCEEDED","message":"TotalRequests"}]')
    server = _response(502, b"<html>Bad Gateway</html>", {"Retry-After": "12"})
    many = _response(429, b"", {"Retry-After": "Wed, 01 May 2024 12:00:00 GMT"})
    bad = _response(400, b'[{"errorCode":"MALFORMED_QUERY","message":"unexpected token"}]')
    assert classify_response(_response(200, b"{}"), "query") is None
    assert type(classify_response(lock, "update")) is RetriableError
    assert isinstance(classify_response(limit, "query"), RateLimitedError)
    error = classify_response(server, "query")
    assert isinstance(error, RetriableError)
    assert error.retry_after == 12.0
    dated = classify_response(many, "query")
    assert isinstance(dated, RateLimitedError)
    assert dated.retry_after == 0.0  # a date in the past: no extra wait
    fatal = classify_response(bad, "query")
    assert isinstance(fatal, FatalError)
    assert "MALFORMED_QUERY" in str(fatal)
