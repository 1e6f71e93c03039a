"""The planner remembers normalised values: its plan is exactly the one ``normalise``
gives value by value (types and zero's sign included), whatever the values repeat."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import example, given, settings
from hypothesis import strategies as st

from agent.core.contract import FieldSpec, default_field_specs
from agent.core.ports import FieldUpdate, FieldValue
from agent.sync.writeback import crm_field, desired_values, normalise, plan_updates
from tests.test_writeback import _account, _doc

SPECS = [s for s in default_field_specs() if s.object == "account"]
BY_FIELD = {s.files: s for s in SPECS}

_POOL: list[object] = [
    None, True, False, 0, 1, -1, 7, 0.0, -0.0, 1.0, 12.25, -12.25, 0.05, -0.04,
    float("nan"), float("inf"), "", " ", "0", "-0.0", "1", "1.0", "12.25", "true", "no",
    "neutral", " at_risk ", "a;b", "frontline;executive", "1748779200000",
    "2025-06-01T12:00:00Z", "2025-06-01T14:00:00+02:00", "not a date",
    ["b", "a"], ("executive",), datetime(2025, 6, 1, 12, 0, 0, 999, tzinfo=UTC),
    datetime(2025, 6, 1, 14, tzinfo=timezone(timedelta(hours=2))), datetime(2025, 6, 1, 12),
]  # fmt: skip

#: Raw values that recur across records (so remembered answers are reused), drawn from
#: a pool of awkward ones, and fresh floats and integers.
_RAW = st.one_of(
    st.sampled_from(_POOL),
    st.floats(-1e9, 1e9),  # beyond, Decimal rounding itself fails
    st.integers(-(10**6), 10**6),
)


#: Equal keys, different answers: each after the other, for every field.
_ALIKE = [{s.logical: raw for s in SPECS} for raw in (0.0, -0.0, 1, True, 1.0, "1", -0.04, 0.0)]


def _records(count: int) -> st.SearchStrategy[list[dict[str, object]]]:
    one = st.fixed_dictionaries({s.logical: _RAW for s in SPECS})
    return st.lists(one, min_size=1, max_size=count)


def _by_value(spec: FieldSpec, raw: object) -> FieldValue:
    return normalise(spec, raw)


def _reference_plan(
    desired: Mapping[str, Mapping[str, FieldValue]],
    current: Mapping[str, Mapping[str, object]],
) -> list[FieldUpdate]:
    """The planner's diff with ``normalise`` called for every value."""
    held = {rid: current.get(rid, {}) for rid in desired}
    diffs = {
        rid: {
            n: v for n, v in desired[rid].items() if _by_value(BY_FIELD[n], held[rid].get(n)) != v
        }
        for rid in sorted(desired)
    }
    return [FieldUpdate(record_id=rid, values=values) for rid, values in diffs.items() if values]


@settings(max_examples=150, deadline=None)
@given(figures=_records(12))
@example(figures=_ALIKE)
def test_desired_values_are_normalise_value_by_value(figures: list[dict[str, object]]) -> None:
    ids = [f"A{i}" for i in range(len(figures))]
    extra = dict(zip(ids, figures, strict=True))
    desired = desired_values(_doc([_account(id=i) for i in ids]), SPECS, "files", "account", extra)
    expected = {
        rid: {crm_field(s, "files"): _by_value(s, extra[rid][s.logical]) for s in SPECS}
        for rid in ids
    }
    assert repr(desired) == repr(expected)


@settings(max_examples=150, deadline=None)
@given(figures=_records(12), held=_records(12))
@example(figures=_ALIKE, held=_ALIKE[::-1])
def test_the_plan_is_the_value_by_value_plan(
    figures: list[dict[str, object]], held: list[dict[str, object]]
) -> None:
    ids = [f"A{i}" for i in range(len(figures))]
    extra = dict(zip(ids, figures, strict=False))
    desired = desired_values(_doc([_account(id=i) for i in ids]), SPECS, "files", "account", extra)
    current = {
        f"A{i}": {crm_field(s, "files"): values[s.logical] for s in SPECS}
        for i, values in enumerate(held)
    }
    assert repr(plan_updates(desired, current, BY_FIELD)) == repr(_reference_plan(desired, current))
