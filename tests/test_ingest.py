"""Survey records into responses or rejections: DOMAIN.md's reading rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from agent.core.models import Rejected, Response
from agent.sources.ingest import (
    REJECTION_REASONS,
    ResponseReader,
    accept_rows,
    parse_response_row,
    parse_score,
    parse_timestamp,
    trim,
)
from tests.core_builders import AS_OF


def row(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "response_id": "r1",
        "email": "a@x.com",
        "score": "9",
        "submitted_at": "2025-05-01T00:00:00Z",
    }
    base.update(fields)
    return base


# --- scores ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0", 0), ("7", 7), ("10", 10), ("07", 7), (" 9\t", 9), ("010", 10), ("00", 0)],
)
def test_valid_text_scores(text: str, expected: int) -> None:
    assert parse_score(text) == expected


@pytest.mark.parametrize(
    "text", ["7.5", "+7", "7.0", "-1", "11", "abc", "", "  ", "1 0", "٣", "²", "0x7", "1e1"]
)
def test_invalid_text_scores(text: str) -> None:
    assert parse_score(text) is None
    assert parse_score(text, json_mode=True) is None


def test_json_integer_scores_are_valid_only_in_json_mode() -> None:
    assert parse_score(8, json_mode=True) == 8
    assert parse_score(0, json_mode=True) == 0
    assert parse_score(8) is None
    assert parse_score("8", json_mode=True) == 8


@pytest.mark.parametrize("value", [7.0, 7.5, 11, -1, True, False, None, [7]])
def test_json_non_integer_or_out_of_range_scores(value: object) -> None:
    assert parse_score(value, json_mode=True) is None


# --- timestamps -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-05-01T10:00:00Z", datetime(2025, 5, 1, 10, tzinfo=UTC)),
        ("2025-05-01T10:00:00", datetime(2025, 5, 1, 10, tzinfo=UTC)),
        ("2025-05-01T10:00:00+02:00", datetime(2025, 5, 1, 8, tzinfo=UTC)),
        ("2025-05-01T10:00:00-05:30", datetime(2025, 5, 1, 15, 30, tzinfo=UTC)),
        ("2025-05-01T10:00:00.25Z", datetime(2025, 5, 1, 10, 0, 0, 250000, tzinfo=UTC)),
        (" 2025-05-01T10:00:00.123456 ", datetime(2025, 5, 1, 10, 0, 0, 123456, tzinfo=UTC)),
    ],
)
def test_timestamps(text: str, expected: datetime) -> None:
    parsed = parse_timestamp(text)
    assert parsed == expected
    assert parsed is not None
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not-a-date",
        "2025-05-01",
        "2025-05-01 10:00:00",
        "2025-13-01T10:00:00Z",
        "2025-02-30T10:00:00Z",
        "2025-05-01T25:00:00Z",
        "2025-05-01T10:00Z",
        "2025-05-01T10:00:00+0200",
        "2025-05-01T10:00:00.1234567Z",
        "20250501T100000Z",
    ],
)
def test_unparseable_timestamps(text: str) -> None:
    assert parse_timestamp(text) is None


def test_non_text_timestamp_is_unparseable() -> None:
    assert parse_timestamp(1_700_000_000) is None
    assert parse_timestamp(None) is None


# --- one record -----------------------------------------------------------------------


def test_accepted_record_is_trimmed_and_typed() -> None:
    parsed = parse_response_row(
        row(
            response_id=" r1\t",
            email="  Ann@X.com ",
            driver=" Support ",
            comment=" fine ",
            account_hint=" A1 ",
            loop_closed_at="2025-05-02T00:00:00+01:00",
        ),
        source="responses.csv",
        as_of=AS_OF,
    )
    assert parsed == Response(
        response_id="r1",
        email="Ann@X.com",
        score=9,
        submitted_at=datetime(2025, 5, 1, tzinfo=UTC),
        driver="Support",
        comment="fine",
        account_hint="A1",
        loop_closed_at=datetime(2025, 5, 1, 23, tzinfo=UTC),
        source="responses.csv",
    )


def test_empty_optional_fields_are_none() -> None:
    parsed = parse_response_row(
        row(email=" ", driver="\t", comment="", account_hint=None), source="s", as_of=AS_OF
    )
    assert isinstance(parsed, Response)
    assert (parsed.email, parsed.driver, parsed.comment, parsed.account_hint) == (
        None,
        None,
        None,
        None,
    )


def test_unparseable_loop_closed_at_is_absent_not_a_rejection() -> None:
    parsed = parse_response_row(row(loop_closed_at="soon"), source="s", as_of=AS_OF)
    assert isinstance(parsed, Response)
    assert parsed.loop_closed_at is None


def test_multi_line_comment_is_kept() -> None:
    parsed = parse_response_row(row(comment="line one\nline two"), source="s", as_of=AS_OF)
    assert isinstance(parsed, Response)
    assert parsed.comment == "line one\nline two"


def test_trim_removes_only_spaces_and_tabs() -> None:
    assert trim(" \ta b\t ") == "a b"
    assert trim("\nx\n") == "\nx\n"
    assert trim(None) == ""
    assert trim(42) == "42"
    assert trim(True) == ""


def test_json_number_id_and_hint_are_text() -> None:
    parsed = parse_response_row(
        row(response_id=17, account_hint=42, score=9), source="s", as_of=AS_OF, json_mode=True
    )
    assert isinstance(parsed, Response)
    assert (parsed.response_id, parsed.account_hint) == ("17", "42")


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"response_id": ""}, "missing_response_id"),
        ({"response_id": "  "}, "missing_response_id"),
        ({"response_id": None}, "missing_response_id"),
        ({"score": ""}, "invalid_score"),
        ({"score": None}, "invalid_score"),
        ({"score": "11"}, "invalid_score"),
        ({"submitted_at": ""}, "invalid_submitted_at"),
        ({"submitted_at": None}, "invalid_submitted_at"),
        ({"submitted_at": "yesterday"}, "invalid_submitted_at"),
        ({"submitted_at": "2025-06-01T12:00:01Z"}, "future_submitted_at"),
        ({"submitted_at": "2025-06-01T14:00:01+02:00"}, "future_submitted_at"),
    ],
)
def test_rejection_reasons(fields: dict[str, object], reason: str) -> None:
    assert parse_response_row(row(**fields), source="s", as_of=AS_OF) == reason


def test_submitted_exactly_at_as_of_is_accepted() -> None:
    parsed = parse_response_row(
        row(submitted_at="2025-06-01T14:00:00+02:00"), source="s", as_of=AS_OF
    )
    assert isinstance(parsed, Response)


def test_missing_field_keys_are_empty() -> None:
    assert parse_response_row({"response_id": "r1"}, source="s", as_of=AS_OF) == "invalid_score"
    assert parse_response_row({}, source="s", as_of=AS_OF) == "missing_response_id"


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"response_id": "", "score": "x", "submitted_at": "x"}, "missing_response_id"),
        ({"score": "x", "submitted_at": "x"}, "invalid_score"),
        ({"score": "x", "submitted_at": "2030-01-01T00:00:00Z"}, "invalid_score"),
        ({"submitted_at": "x"}, "invalid_submitted_at"),
    ],
)
def test_reason_precedence_within_a_record(fields: dict[str, object], reason: str) -> None:
    assert parse_response_row(row(**fields), source="s", as_of=AS_OF) == reason


def test_reason_order_is_domains() -> None:
    assert REJECTION_REASONS[1:] == (
        "missing_response_id",
        "duplicate_response_id",
        "invalid_score",
        "invalid_submitted_at",
        "future_submitted_at",
    )


# --- a sequence of records --------------------------------------------------------------


def test_positions_and_sources_of_rejections() -> None:
    rows = [row(response_id="a"), row(response_id="", score="9"), row(response_id="c", score="x")]
    accepted, rejected = accept_rows(rows, "hook", AS_OF)
    assert [r.response_id for r in accepted] == ["a"]
    assert [r.source for r in accepted] == ["hook"]
    assert rejected == [
        Rejected("hook", 2, "missing_response_id", ""),
        Rejected("hook", 3, "invalid_score", "x"),
    ]


def test_identical_repeat_is_ignored_and_different_repeat_rejected() -> None:
    rows = [
        row(response_id="r1", score="9"),
        row(response_id="r1", score="9"),
        row(response_id="r1", score="3"),
        row(response_id="r2"),
    ]
    accepted, rejected = accept_rows(rows, "s", AS_OF)
    assert [r.response_id for r in accepted] == ["r1", "r2"]
    assert rejected == [Rejected("s", 3, "duplicate_response_id", "r1")]


def test_repeat_is_compared_with_the_first_row_not_the_latest() -> None:
    rows = [row(score="9"), row(score="3"), row(score="3"), row(score="9")]
    accepted, rejected = accept_rows(rows, "s", AS_OF)
    assert len(accepted) == 1
    assert rejected == [
        Rejected("s", 2, "duplicate_response_id", "r1"),
        Rejected("s", 3, "duplicate_response_id", "r1"),
    ]


def test_repeat_of_an_invalid_first_row() -> None:
    """The first row of an id counts even when it was rejected: its exact repeat is silent."""
    rows = [row(score="x"), row(score="x"), row(score="9")]
    accepted, rejected = accept_rows(rows, "s", AS_OF)
    assert accepted == []
    assert rejected == [
        Rejected("s", 1, "invalid_score", "x"),
        Rejected("s", 3, "duplicate_response_id", "r1"),
    ]


def test_duplicate_takes_precedence_over_other_faults() -> None:
    rows = [row(), row(score="x", submitted_at="nope")]
    _, rejected = accept_rows(rows, "s", AS_OF)
    assert rejected == [Rejected("s", 2, "duplicate_response_id", "r1")]


def test_ids_are_compared_trimmed() -> None:
    rows = [row(response_id="r1"), row(response_id=" r1 ", score="3")]
    _, rejected = accept_rows(rows, "s", AS_OF)
    assert rejected == [Rejected("s", 2, "duplicate_response_id", " r1 ")]


def test_a_repeat_differing_only_in_spaces_is_not_identical() -> None:
    rows = [row(email="a@x.com"), row(email=" a@x.com")]
    _, rejected = accept_rows(rows, "s", AS_OF)
    assert rejected == [Rejected("s", 2, "duplicate_response_id", "r1")]


def test_raw_text_decides_identity_when_given() -> None:
    reader = ResponseReader("responses.jsonl", AS_OF, json_mode=True)
    reader.feed(row(score=9), raw='{"response_id": "r1", "score": 9}')
    reader.feed(row(score=9), raw='{"response_id": "r1", "score": 9}')
    reader.feed(row(score=9), raw='{"response_id":"r1","score":9}')
    assert len(reader.responses) == 1
    assert reader.rejected == [Rejected("responses.jsonl", 3, "duplicate_response_id", "r1")]


def test_repeats_are_per_source() -> None:
    first, _ = accept_rows([row()], "a.csv", AS_OF)
    second, rejected = accept_rows([row(score="3")], "b.jsonl", AS_OF)
    assert len(first) == len(second) == 1
    assert rejected == []


def test_a_record_that_is_not_a_mapping_is_invalid_record() -> None:
    reader = ResponseReader("responses.jsonl", AS_OF, json_mode=True)
    reader.feed(None)
    reader.feed(row())
    assert reader.rejected == [Rejected("responses.jsonl", 1, "invalid_record")]
    assert len(reader.responses) == 1


def test_naive_as_of_is_utc() -> None:
    reader = ResponseReader("s", datetime(2025, 6, 1, 12))  # naive on purpose
    reader.feed(row(submitted_at="2025-06-01T12:00:01"))
    assert reader.rejected == [Rejected("s", 1, "future_submitted_at", "2025-06-01T12:00:01")]


def test_as_of_with_an_offset() -> None:
    as_of = datetime(2025, 6, 1, 14, tzinfo=timezone(timedelta(hours=2)))
    accepted, rejected = accept_rows(
        [
            row(response_id="a", submitted_at="2025-06-01T12:00:00Z"),
            row(response_id="b", submitted_at="2025-06-01T12:00:01Z"),
        ],
        "s",
        as_of,
    )
    assert [r.response_id for r in accepted] == ["a"]
    assert rejected == [Rejected("s", 2, "future_submitted_at", "2025-06-01T12:00:01Z")]
