"""The stored content hash of a response never changes its bytes.

Every stored response carries ``response_hash``; a repeat is compared with it, so a
hash written differently for the same response would turn every repeat of a response
stored by an earlier version into a conflict. ``response_hash`` writes the usual
response's JSON out itself; ``_reference`` below is the function it replaced (the JSON
encoder over a list), and the two must agree on every field's edge cases.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from agent.core.models import Response
from agent.state.codec import response_hash, utc_iso

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def _reference(response: Response) -> str:
    """``response_hash`` as every stored hash so far was made."""
    content = [
        response.email,
        response.score,
        utc_iso(response.submitted_at),
        response.driver,
        response.comment,
        response.account_hint,
        utc_iso(response.loop_closed_at) if response.loop_closed_at else None,
    ]
    return hashlib.sha256(_ENCODER.encode(content).encode("utf-8")).hexdigest()


# text a JSON encoder treats specially: quotes, backslashes, control characters, the
# line separators JavaScript chokes on, DEL, non-ASCII, astral characters, blanks
_TRICKY = st.sampled_from(
    ['"', "\\", "\x00", "\x1f", "\n\r\t\b\f", "\u2028\u2029", "\x7f", "é", "😀", "", " "]
)
_TEXT = st.none() | st.text() | _TRICKY | st.lists(_TRICKY | st.text(max_size=3)).map("".join)
_HALF_HOUR_WEST = timezone(timedelta(hours=-5, minutes=-30))
_INSTANT = st.datetimes(
    min_value=datetime(1, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.none() | st.just(UTC) | st.timezones() | st.just(_HALF_HOUR_WEST),
)


@settings(max_examples=500, deadline=None)
@given(
    email=_TEXT,
    score=st.integers(min_value=0, max_value=10) | st.integers(),
    submitted_at=_INSTANT,
    driver=_TEXT,
    comment=_TEXT,
    account_hint=_TEXT,
    loop_closed_at=st.none() | _INSTANT,
)
def test_response_hash_has_the_bytes_it_always_had(  # noqa: PLR0917  # one per field
    email: str | None,
    score: int,
    submitted_at: datetime,
    driver: str | None,
    comment: str | None,
    account_hint: str | None,
    loop_closed_at: datetime | None,
) -> None:
    response = Response(
        "r1", email, score, submitted_at, driver, comment, account_hint, loop_closed_at, "s"
    )
    assert response_hash(response) == _reference(response)


@settings(max_examples=200, deadline=None)
@given(
    stamp=st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    micro=st.sampled_from([0, 1, 999_999]),
)
def test_utc_instants_hash_as_before_with_and_without_microseconds(
    stamp: datetime, micro: int
) -> None:
    """The fast path's case: both instants in UTC (``Z`` in a file), whole seconds or not."""
    at = stamp.replace(microsecond=micro, tzinfo=UTC)
    response = Response("r1", "a@acme.com", 7, at, loop_closed_at=at + timedelta(hours=1))
    assert response_hash(response) == _reference(response)


def test_values_outside_the_fields_types_hash_as_the_encoder_made_them() -> None:
    """A score that is not a plain int, or a non-text field, takes the encoder's way."""
    base = Response("r1", "a@acme.com", 7, datetime(2024, 3, 1, tzinfo=UTC))
    for odd in (
        replace(base, score=True),
        replace(base, score=7.0),  # type: ignore[arg-type]  # not a field's type: the point
        replace(base, comment=12),  # type: ignore[arg-type]
        replace(base, email=["a"]),  # type: ignore[arg-type]
    ):
        assert response_hash(odd) == _reference(odd)


def test_known_responses_keep_their_stored_hashes() -> None:
    """Two hashes as stored by earlier versions, pinned: the reference cannot drift."""
    full = Response(
        "r1",
        "Ann@Acme.com",
        3,
        datetime(2024, 3, 1, 12, 0, 0, 250, tzinfo=timezone(timedelta(hours=2))),
        "Support",
        'Slow "tickets" — très lent\n',
        None,
        datetime(2024, 3, 2, tzinfo=UTC),
        "webhook",
    )
    bare = Response("r2", None, 10, datetime(2024, 3, 1, 12), source="x")
    assert response_hash(full) == (
        "17a32ac6bd69a63c50768a661dd4e896fc7a95422f7f9b9997c9e09cc164a7d0"
    )
    assert response_hash(bare) == (
        "c64d152241667e35e2bf28f7be63c2c25c9001e7a4984f9a4dfabaa8e46a623f"
    )
