"""The planner remembers normalised values: its plan is exactly the one ``normalise``
gives value by value (types and zero's sign included), whatever the values repeat.

The plan streamed a chunk of records at a time over a real store is the plan of the
whole portfolio compared at once, and it is made while it is sent: each confirmed batch
is recorded before the next is planned and sent, and a crash in between converges."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from agent.core.contract import FieldSpec, ObjectKind, default_field_specs
from agent.core.document import MetricsDocument
from agent.core.models import Account
from agent.core.ports import FieldProblem, FieldUpdate, FieldValue, WriteOutcome
from agent.state.store import StateStore
from agent.sync.cycle import WritebackPlan, WritebackStream, run_writeback
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


# -- the plan streamed a chunk at a time ---------------------------------------------------

#: Ids whose order differs by code point, case and separators; one example's ids share a
#: prefix of their own (the store is shared by the examples).
_IDS = ["a", "B", "a-1", "a1", "a0", "A", "Z", "é", "a.b", "zz"]
#: When the mirror last read a record: before the writes (they stand in for the CRM's
#: values), after them (the CRM's own values count), or never.
_READ = st.sampled_from(["before", "after", "never"])
_HELD = st.one_of(
    st.none(), st.sampled_from(["", "0", "12.25", "neutral", "true", "a;b", "1748779200000"]),
    st.floats(-1e6, 1e6), st.integers(-100, 100), st.booleans(),
)  # fmt: skip
_FIGURES = st.fixed_dictionaries(
    {
        "nps": st.one_of(st.none(), st.floats(-100, 100)),
        "health_score": st.one_of(st.none(), st.sampled_from([0.0, 49.5, 49.49, 80.0])),
        "at_risk": st.booleans(),
        "health_status": st.sampled_from(["healthy", "neutral", "at_risk"]),
        "contacts": st.integers(0, 5),
    }
)
_record = st.tuples(_FIGURES, _READ, st.dictionaries(st.sampled_from(list(BY_FIELD)), _HELD))
_EXAMPLES = itertools.count()
_BEFORE_ALL = datetime(2025, 1, 1, tzinfo=UTC)
_AFTER_ALL = datetime(2100, 1, 1, tzinfo=UTC)


class _Crm:
    """A CRM that accepts every record, ``max_write_batch`` at a time, and tells, on each
    write, what the store had recorded and the stream had planned by then."""

    name = "files"

    def __init__(self, store: StateStore, batch: int, crash_at: int | None = None) -> None:
        self.store, self.max_write_batch, self.crash_at = store, batch, crash_at
        self.stream: WritebackStream | None = None
        self.sent: list[list[str]] = []
        self.recorded_then: list[set[str]] = []
        self.planned_then: list[int] = []

    def check_fields(self, specs: Sequence[FieldSpec]) -> list[FieldProblem]:
        return []

    def write(self, obj: ObjectKind, updates: Sequence[FieldUpdate]) -> list[WriteOutcome]:
        if len(self.sent) == self.crash_at:
            raise RuntimeError("the process died while this batch was out")
        self.recorded_then.append(set(self.store.written_values(self.name, obj)))
        self.planned_then.append(0 if self.stream is None else self.stream.records)
        self.sent.append([u.record_id for u in updates])
        return [WriteOutcome(record_id=u.record_id, ok=True) for u in updates]


def _portfolio(
    store: StateStore,
    prefix: str,
    records: Sequence[tuple[dict[str, object], str, dict[str, object]]],
) -> tuple[MetricsDocument, list[Account]]:
    """A document over ``records``, their mirror (with each record's CRM values) read
    before or after the agent wrote some of its fields (every other record), or never."""
    ids = [f"{prefix}{_IDS[i % len(_IDS)]}{i // len(_IDS) or ''}" for i in range(len(records))]
    read: dict[str, list[Account]] = {"before": [], "after": [], "never": []}
    for rid, (_figures, when, held) in zip(ids, records, strict=True):
        read[when].append(Account(rid, rid, crm_values=held))
    written = [
        FieldUpdate(rid, dict.fromkeys(held, 1))
        for rid, (_f, _r, held) in zip(ids[::2], records[::2], strict=True)
    ]
    with store.transaction() as tx:
        tx.stamp_records("files", "account", read["before"], _BEFORE_ALL)
    store.record_written("files", "account", written)
    with store.transaction() as tx:
        tx.stamp_records("files", "account", read["after"], _AFTER_ALL)
    doc = _doc([_account(id=rid, **f) for rid, (f, _r, _h) in zip(ids, records, strict=True)])
    mirror = read["before"] + read["after"]
    return doc, sorted(mirror, key=lambda a: a.id[::-1])  # any order: the stream sorts


def _whole_plan(
    store: StateStore, doc: MetricsDocument, mirror: Sequence[Account]
) -> WritebackPlan:
    """The plan of the whole portfolio compared at once, as the planner made it before it
    streamed: every record's current values, desired values, updates and ``before``."""
    current: dict[str, Mapping[str, object]] = {a.id: a.crm_values for a in mirror}
    for rid, values in store.written_since_read("files", "account").items():
        current[rid] = {**current.get(rid, {}), **values}
    desired = desired_values(doc, SPECS, "files", "account")
    updates = plan_updates(desired, current, BY_FIELD)
    before = {
        u.record_id: {
            n: normalise(BY_FIELD[n], current.get(u.record_id, {}).get(n)) for n in u.values
        }
        for u in updates
    }
    return WritebackPlan({"account": updates}, {"account": before})


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(records=st.lists(_record, min_size=1, max_size=14), chunk=st.integers(1, 5))
def test_the_streamed_plan_is_the_whole_portfolios_plan(
    store: StateStore, records: list[tuple[dict[str, object], str, dict[str, object]]], chunk: int
) -> None:
    doc, mirror = _portfolio(store, f"E{next(_EXAMPLES)}/", records)
    whole = _whole_plan(store, doc, mirror)
    stream = WritebackStream(store, _Crm(store, 1), doc, SPECS, (mirror, []), chunk=chunk)
    streamed = stream.whole()
    assert repr(streamed) == repr(whole)
    assert stream.records == whole.records
    assert list(stream.lines()) == list(whole.lines("files"))


def _stream(store: StateStore, crm: _Crm, count: int, chunk: int) -> WritebackStream:
    doc = _doc([_account(id=f"A{i:02}", nps=float(i)) for i in range(count)])
    mirror = [Account(f"A{i:02}", "n") for i in range(count)]
    store.upsert_records("files", "account", mirror)
    stream = WritebackStream(store, crm, doc, SPECS, (mirror, []), chunk=chunk)
    crm.stream = stream
    return stream


def test_the_plan_is_made_batch_by_batch_each_recorded_before_the_next(store: StateStore) -> None:
    crm = _Crm(store, batch=2)
    stream = _stream(store, crm, count=7, chunk=3)
    counts = run_writeback(store, crm, stream)
    ids = [f"A{i:02}" for i in range(7)]
    assert crm.sent == [ids[0:2], ids[2:4], ids[4:6], ids[6:7]]  # full batches across chunks
    assert crm.planned_then == [3, 6, 6, 7]  # a chunk planned only when its batch is due
    assert crm.recorded_then == [set(), set(ids[0:2]), set(ids[0:4]), set(ids[0:6])]
    assert counts.written == stream.records == 7
    assert WritebackStream(store, crm, stream.doc, SPECS, stream.mirrored).whole().records == 0


def test_a_crash_mid_stream_loses_and_repeats_no_write(store: StateStore) -> None:
    crm = _Crm(store, batch=2, crash_at=2)
    stream = _stream(store, crm, count=7, chunk=3)
    with pytest.raises(RuntimeError, match="died"):
        run_writeback(store, crm, stream)
    assert crm.sent == [["A00", "A01"], ["A02", "A03"]]
    again = _Crm(store, batch=2)
    restarted = WritebackStream(store, again, stream.doc, SPECS, stream.mirrored, chunk=3)
    run_writeback(store, again, restarted)
    assert again.sent == [["A04", "A05"], ["A06"]]  # the rest, once
    assert set(store.written_values("files", "account")) == {f"A{i:02}" for i in range(7)}
