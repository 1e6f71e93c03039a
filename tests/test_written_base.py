"""Which records a write-back compares after one that ran to its end (``WrittenBase``).

The long-running agent's behaviour end to end is in tests/service/test_written_base.py;
these cases pin each input of the choice: the rows themselves, the history values,
the coverage plan, the records read, the refused writes, the field mappings and a
forgotten base.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

from agent.core.contract import default_field_specs, opt_in_field_specs
from agent.core.document import ContactFigures
from agent.sync.writeback import Differ
from agent.sync.written_base import DocRow, WrittenBase, WrittenOver
from tests.test_writeback import _account

SPECS = tuple(default_field_specs())
SINCE = datetime(2025, 6, 1, tzinfo=UTC)


def _over(extra: dict[str, dict[str, object]] | None = None, plan: set[str] | None = None):  # type: ignore[no-untyped-def]
    return WrittenOver(
        SPECS,
        extra if extra is not None else {"A1": {"health_status_since": SINCE}, "A2": {}},
        None if plan is None else frozenset(plan),
    )


ACCOUNTS: list[DocRow] = [_account(id="A1"), _account(id="A2")]
CONTACTS: list[DocRow] = [
    ContactFigures("C1", "A1", "frontline"),
    ContactFigures("C2", "A1", "executive"),
    ContactFigures("C3", "A2", "frontline"),
]


def _settled(over: WrittenOver | None = None, failed: dict | None = None) -> WrittenBase:  # type: ignore[type-arg]
    base = WrittenBase()
    over = over or _over()
    over.rows = {"account": list(ACCOUNTS), "contact": list(CONTACTS)}
    base.settle(over, failed or {})
    return base


def test_nothing_moved_nothing_is_due() -> None:
    due = _settled().take()
    assert due("account", ACCOUNTS, _over()) == set()
    assert due("contact", CONTACTS, _over()) == set()


def test_a_new_row_object_is_due_even_with_equal_values() -> None:
    due = _settled().take()
    rows = [ACCOUNTS[0], replace(ACCOUNTS[1])]
    assert due("account", rows, _over()) == {"A2"}
    assert due("contact", [*CONTACTS, ContactFigures("C4", "A2", "executive")], _over()) == {"C4"}


def test_moved_history_values_make_their_account_due() -> None:
    due = _settled().take()
    later = _over({"A1": {"health_status_since": SINCE.replace(day=2)}, "A2": {}})
    assert due("account", ACCOUNTS, later) == {"A1"}


def test_a_moved_coverage_plan_makes_the_contacts_in_or_out_due() -> None:
    due = _settled(_over(plan={"C1", "C2"})).take()
    assert due("contact", CONTACTS, _over(plan={"C2", "C3"})) == {"C1", "C3"}
    # the plan started or stopped being written: every contact
    assert _settled(_over(plan={"C1"})).take()("contact", CONTACTS, _over()) is None


def test_records_read_and_refused_writes_are_due() -> None:
    base = _settled(failed={"contact": ["C3"]})
    base.changed("account", ["A2"])
    due = base.take()
    assert due("account", ACCOUNTS, _over()) == {"A2"}
    assert due("contact", CONTACTS, _over()) == {"C3"}


def test_a_read_too_large_to_list_makes_every_record_due() -> None:
    base = _settled()
    base.changed("contact", (f"C{i}" for i in range(200_001)))
    due = base.take()
    assert due("contact", CONTACTS, _over()) is None
    assert due("account", ACCOUNTS, _over()) == set()


def test_no_base_other_mappings_or_a_forgotten_base_compare_every_record() -> None:
    assert WrittenBase().take()("account", ACCOUNTS, _over()) is None
    other = WrittenOver(SPECS[:-1], {}, None)
    assert _settled().take()("account", ACCOUNTS, other) is None
    base = _settled()
    base.forget()
    assert base.take()("account", ACCOUNTS, _over()) is None


def test_a_write_back_that_did_not_end_leaves_no_base() -> None:
    base = _settled()
    base.take()  # the write-back failed part-way: ``settle`` never came
    assert base.take()("account", ACCOUNTS, _over()) is None


def test_reads_during_a_write_back_stay_counted() -> None:
    base = _settled()
    base.take()
    base.changed("account", ["A1"])  # read while the write-back ran
    over = _over()
    over.rows = {"account": list(ACCOUNTS), "contact": list(CONTACTS)}
    base.settle(over, {})
    assert base.take()("account", ACCOUNTS, _over()) == {"A1"}


def test_a_records_digest_moves_with_each_input_of_its_planned_values() -> None:
    """The stored settlement's digest (``Differ.digests``): the same in every process for
    the same inputs, and moved by a held figure, a history value or the plan's flag."""
    specs = [*SPECS, *(s for s in opt_in_field_specs() if s.object == "account")]
    accounts, contacts = Differ(specs, "files", "account"), Differ(SPECS, "files", "contact")
    extra: dict[str, dict[str, object]] = {"A1": {"health_trend_30d": 2.0}}
    first = accounts.digests(ACCOUNTS, extra)
    assert first == Differ(specs, "files", "account").digests(list(ACCOUNTS), dict(extra))
    assert set(first) == {"A1", "A2"}
    moved = accounts.digests([replace(ACCOUNTS[0], health_score=1.0), ACCOUNTS[1]], extra)
    assert moved["A1"] != first["A1"]
    assert moved["A2"] == first["A2"]
    trend = accounts.digests(ACCOUNTS, {"A1": {"health_trend_30d": 3.0}})
    assert trend["A1"] != first["A1"]
    assert trend["A2"] == first["A2"]
    flagged = [*SPECS, *(s for s in opt_in_field_specs() if s.object == "contact")]
    plan = Differ(flagged, "files", "contact")
    before, after = plan.digests(CONTACTS, None, {"C1"}), plan.digests(CONTACTS, None, {"C2"})
    assert {rid for rid in before if before[rid] != after[rid]} == {"C1", "C2"}
    assert contacts.digests(CONTACTS)["C3"] == contacts.digests(CONTACTS, None, {"C3"})["C3"]
