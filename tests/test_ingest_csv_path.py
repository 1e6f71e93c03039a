"""The CSV reading path of responses agrees with the general one, record for record.

``ResponseReader.feed_csv`` reads a CSV file's records without a mapping per record,
and ``parse_timestamp`` reads the canonical ``YYYY-MM-DDTHH:MM:SSZ`` form without its
pattern: both are shortcuts, and these tests hold them to the general path (``feed``
with the record's fields and text; the pattern then the calendar) on the same input.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from agent.core.models import Contact, Response, slot_setters
from agent.sources.csvrecords import CsvRows, read_csv_records
from agent.sources.ingest import ResponseReader, _any_timestamp, parse_timestamp
from agent.sources.plainfiles import RESPONSE_COLUMNS
from tests.core_builders import AS_OF

REQUIRED, KNOWN = RESPONSE_COLUMNS
COLUMNS = (*REQUIRED, *KNOWN)

# --- the canonical timestamp form -----------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "2025-06-01T12:00:00Z",
        "2024-02-29T23:59:59Z",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
        "2025-02-29T12:00:00Z",  # no such day: the shape fits, the calendar does not
        "2025-13-01T12:00:00Z",
        "2025-06-01T24:00:00Z",
        "2025-06-01T12:60:00Z",
        "2025-06-01T12:00:60Z",
        "2025-06-01 12:00:00Z",  # a space for the T: fromisoformat takes it, we do not
        "2025-06-01t12:00:00Z",
        "2025-06-01T12:00:00z",
        " 025-06-01T12:00:00Z",  # twenty characters, the separators in place
        "2025-06-01T12:00:0 Z",
        "+025-06-01T12:00:00Z",
        "2025-06-01T12:00:0٣Z",  # a digit, but not an ASCII one
        "\uff12025-06-01T12:00:00Z",  # a fullwidth digit
        "2025-W22-7T12:00:00Z",  # an ISO week date: fromisoformat takes it, we do not
        "20250601T120000.123Z",  # the basic form with a fraction: the same
        "2025-06-01T1200:00.Z",
        "2025-06-01T12:00:00+00:00",  # the general forms, longer than twenty
        "2025-06-01T14:00:00+02:00",
        "2025-06-01T12:00:00.5Z",
        "2025-06-01T12:00:00",
        " 2025-06-01T12:00:00Z",
        "2025-06-01T12:00:00Z\t",
        "",
        "Z",
    ],
)
def test_canonical_timestamps_read_as_the_general_path_reads_them(text: str) -> None:
    fast, general = parse_timestamp(text), _any_timestamp(text)
    assert fast == general
    if fast is not None:
        assert general is not None
        assert fast.tzinfo is UTC
        assert fast.isoformat() == general.isoformat()


_TEMPLATE = "2025-06-01T12:00:00Z"


@settings(max_examples=500)
@given(
    st.lists(
        st.tuples(
            st.integers(0, len(_TEMPLATE) - 1),
            st.sampled_from("0123456789-:TZtz .+W٣\uff12\x00é"),
        ),
        max_size=3,
    )
)
def test_near_canonical_texts_read_as_the_general_path_reads_them(
    edits: list[tuple[int, str]],
) -> None:
    chars = list(_TEMPLATE)
    for index, char in edits:
        chars[index] = char
    text = "".join(chars)
    assert parse_timestamp(text) == _any_timestamp(text)


@given(st.datetimes(timezones=st.just(UTC)))
def test_every_canonical_instant_reads_back(moment: datetime) -> None:
    text = moment.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")
    if len(text) != len(_TEMPLATE):  # years before 1000 are written without padding
        return
    parsed = parse_timestamp(text)
    assert parsed == moment.replace(microsecond=0) == _any_timestamp(text)
    assert parsed is not None
    assert parsed.tzinfo is UTC


# --- feed_csv against feed --------------------------------------------------------------


def _general(path: Path, as_of: datetime) -> ResponseReader:
    """The records of ``path`` fed one mapping at a time, with their exact text."""
    reader = ResponseReader(path.name, as_of)
    for record in read_csv_records(path, required=REQUIRED, known=COLUMNS):
        if record.fault is not None:
            reader.feed_fault(record.fault, record.fault_value)
        else:
            reader.feed({c: record.fields.get(c, "") for c in COLUMNS}, raw=record.raw)
    return reader


def _fast(path: Path, as_of: datetime) -> ResponseReader:
    reader = ResponseReader(path.name, as_of)
    reader.feed_csv(CsvRows(path, required=REQUIRED, known=COLUMNS))
    return reader


def _same(path: Path) -> None:
    fast, general = _fast(path, AS_OF), _general(path, AS_OF)
    assert fast.responses == general.responses
    assert fast.rejected == general.rejected
    assert fast.position == general.position
    assert fast.seen_ids() == general.seen_ids()
    assert fast.held_ids() == general.held_ids()


_ids = st.sampled_from(["r1", "r2", " r1", "r3\t", "", "  ", "r10"])
_scores = st.sampled_from(["0", "7", "9", "10", "07", " 9", "11", "-1", "7.0", "x", "", "٣"])
_times = st.sampled_from(
    [
        "2025-05-01T10:00:00Z",
        "2025-06-01T12:00:00Z",
        "2025-06-01T12:00:01Z",  # after AS_OF: future
        "2025-06-01T14:00:00+02:00",
        "2025-06-01T14:00:01+02:00",
        "2025-05-01T10:00:00.250Z",
        "2025-05-01T10:00:00",
        " 2025-05-01T10:00:00Z ",
        "2025-02-29T10:00:00Z",
        "2025-05-01 10:00:00Z",
        "yesterday",
        "",
    ]
)
_texts = st.sampled_from(["", "a@x.com", " A@X.com ", "Price", "\tx\t", "line\nbreak", 'q"uote'])


@st.composite
def _records(draw: st.DrawFn) -> list[str]:
    return [
        draw(_ids),
        draw(_texts),
        draw(_scores),
        draw(_times),
        draw(_texts),
        draw(_texts),
        draw(_texts),
        draw(st.one_of(_times, st.just(""))),
    ]


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(_records(), max_size=12), st.booleans())
@example([["r1", "", "9", "2025-05-01T10:00:00Z", "", "", "", ""]] * 2, False)
@example([["r1", "", "9", "2025-05-01T10:00:00Z", "", "", "", ""]] * 2, True)
def test_feed_csv_reads_as_feed_does(tmp_path: Path, records: list[list[str]], crlf: bool) -> None:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n" if crlf else "\n")
    writer.writerow(COLUMNS)
    writer.writerows(records)
    path = tmp_path / "responses.csv"
    path.write_text(out.getvalue(), encoding="utf-8", newline="")
    _same(path)


def test_feed_csv_takes_faulty_records_and_missing_columns_as_feed_does(
    tmp_path: Path,
) -> None:
    path = tmp_path / "responses.csv"
    path.write_text(
        "Score,response_id,submitted_at,email,extra\n"  # no driver, comment, hint, closed
        "9,r1,2025-05-01T10:00:00Z,a@x.com,e\n"
        "9,r2,2025-05-01T10:00:00Z\n"  # too few fields
        "9,r1,2025-05-01T10:00:00Z,a@x.com,e\n"  # an exact repeat: nothing
        "8,r1,2025-05-01T10:00:00Z,a@x.com,e\n"  # the same id, another record
        "10,r3,2025-05-01T10:00:00Z,,\n"
        '10,r4,2025-05-01T10:00:00Z,"open\n',  # a quote never closed
        encoding="utf-8",
    )
    _same(path)
    reader = _fast(path, AS_OF)
    assert [r.response_id for r in reader.responses] == ["r1", "r3"]
    assert [(r.position, r.reason) for r in reader.rejected] == [
        (2, "wrong_field_count"),
        (4, "duplicate_response_id"),
        (6, "unterminated_quote"),
    ]


# --- building values slot by slot ---------------------------------------------------------


def test_slot_setters_build_the_same_value() -> None:
    setters = slot_setters(
        Contact, ("id", "account_id", "email", "name", "title", "crm_tier", "crm_values")
    )
    values = ("c1", "a1", "c1@x.com", "Ann", "CEO", None, {"f": "v"})
    built = object.__new__(Contact)
    for setter, value in zip(setters, values, strict=True):
        setter(built, value)
    assert built == Contact(*values)


def test_slot_setters_refuse_a_field_left_out() -> None:
    with pytest.raises(TypeError, match="Response has the fields"):
        slot_setters(Response, ("response_id", "email", "score", "submitted_at"))
