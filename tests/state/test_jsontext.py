"""The state's JSON text: orjson's speed, the standard library's values."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Text, cast, select
from sqlalchemy import text as sql_text

from agent.core.models import Account
from agent.state import schema
from agent.state.jsontext import dumps, loads
from agent.state.store import StateStore

_BIG = 2**64 + 7
_NEGATIVE_BIG = -(2**63) - 1

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**80), max_value=2**80)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(json_values)
def test_every_value_reads_back_as_the_standard_library_reads_it(value: object) -> None:
    text = dumps(value)
    assert loads(text) == json.loads(text) == value
    assert _types(loads(text)) == _types(value)  # an int stays an int, a float a float


@given(json_values)
def test_text_the_standard_library_wrote_reads_the_same(value: object) -> None:
    text = json.dumps(value)
    assert loads(text) == value
    assert loads(text.encode()) == value  # PostgreSQL's driver hands bytes over
    assert loads(memoryview(text.encode())) == value


def test_integers_beyond_64_bits_keep_every_digit_both_ways() -> None:
    for number in (_BIG, _NEGATIVE_BIG, -(10**19) + 1):
        text = dumps({"n": number})
        assert text == f'{{"n":{number}}}'
        back = loads(text)["n"]
        assert back == number
        assert type(back) is int


def test_the_standard_librarys_nan_and_infinity_are_read() -> None:
    back = loads(json.dumps([math.nan, math.inf, -math.inf]))
    assert math.isnan(back[0])
    assert back[1:] == [math.inf, -math.inf]


def test_the_text_is_compact_utf8_and_keys_become_text() -> None:
    assert dumps({"é": [1, 2.5, None, True], 3: "x"}) == '{"é":[1,2.5,null,true],"3":"x"}'
    assert dumps((1, 2)) == "[1,2]"


def test_what_json_has_no_type_for_goes_to_default_or_is_refused() -> None:
    when = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)

    @dataclass
    class Point:
        x: int

    for odd in (when, Point(1), b"bytes"):
        with pytest.raises(TypeError):
            dumps({"v": odd})
    assert (
        dumps({"v": when}, default=lambda v: v.isoformat()) == '{"v":"2024-05-01T09:30:00+00:00"}'
    )


def test_json_columns_hold_the_compact_text_on_every_dialect(store: StateStore) -> None:
    account = Account("a", "Ä", crm_values={"big": _BIG, "x": [1, "ü"]})
    store.upsert_records("files", "account", [account])
    c = schema.crm_records.c
    with store.reading() as tx:
        text = tx.connection.execute(select(cast(c.payload, Text))).scalar_one()
    assert text == dumps(json.loads(text))
    assert f'"big":{_BIG}' in text
    assert store.load_accounts("files") == [account]


def test_a_payload_stored_as_the_standard_library_wrote_it_is_rewritten_once(
    store: StateStore,
) -> None:
    account = Account("a", "Acme", revenue=10.0, crm_values={"n": 1})
    store.upsert_records("files", "account", [account])
    c = schema.crm_records.c
    with store.transaction() as tx:
        old = tx.connection.execute(select(cast(c.payload, Text))).scalar_one()
        spaced = json.dumps(json.loads(old))  # with the standard library's spaces
        assert spaced != old
        typed = "CAST(:t AS json)" if store.dialect == "postgresql" else ":t"
        tx.connection.execute(sql_text(f"UPDATE crm_records SET payload = {typed}"), {"t": spaced})
    assert store.load_accounts("files") == [account]  # the old text reads the same
    assert store.upsert_records("files", "account", [account]) == 1  # written anew once
    assert store.upsert_records("files", "account", [account]) == 0


def _types(value: object) -> object:
    if isinstance(value, dict):
        return {k: _types(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_types(v) for v in value]
    return type(value)
