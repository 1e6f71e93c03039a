"""A response's previous answer: the one-pass index and the on-demand one (answers out
of order) equal the per-respondent sort."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agent.core.compute import MatchedResponse
from agent.core.models import Account, Contact, Response, sort_as_stored
from agent.rules import history
from agent.rules.history import Answers, RuleHistory, _index

T0 = datetime(2026, 3, 1, tzinfo=UTC)
ACCOUNTS = [Account("a1", "A1"), Account("a2", "A2")]
CONTACTS = [Contact("c1", "a1", "ann@a1.example"), Contact("c2", "a2", "bob@a2.example")]

answers = st.lists(
    st.tuples(
        st.integers(0, 3),  # the instant, in hours: ties are common
        st.sampled_from(["hook", "responses.csv"]),
        st.sampled_from(["r1", "r2", "r3", "R1"]),
        st.sampled_from([0, 1, None]),  # contact, or none
        st.sampled_from(["Ann@a1.example", "ann@a1.example ", "x@free.example", None]),
        st.integers(0, 1),  # the account a contact-less answer matched
    ),
    max_size=30,
)


def _facts(rows: list[tuple[int, str, str, int | None, str | None, int]]) -> list[MatchedResponse]:
    responses = [
        Response(rid, email, 5, T0 + timedelta(hours=hours), source=source)
        for hours, source, rid, _contact, email, _account in rows
    ]
    facts = []
    for response, (_h, _s, _r, contact, _e, account) in zip(responses, rows, strict=True):
        who = CONTACTS[contact] if contact is not None else None
        matched = ACCOUNTS[int(who.account_id[1]) - 1] if who is not None else ACCOUNTS[account]
        facts.append(MatchedResponse(response, matched, who, "unknown", True, None))
    return facts


def _respondent(facts: MatchedResponse) -> tuple[str, ...] | None:
    """The reference's respondent: the account and contact, or the normalised email."""
    if facts.contact is not None:
        return (facts.account.id, facts.contact.id)
    email = facts.response.email
    return None if not email else (email.strip().lower(),)


def _sorted_index(responses: list[MatchedResponse]) -> dict[int, Any]:
    """The reference: every respondent's answers sorted, each one's predecessor."""
    by_person: dict[tuple[str, ...], list[MatchedResponse]] = {}
    for facts in responses:
        who = _respondent(facts)
        if who is not None:
            by_person.setdefault(who, []).append(facts)
    previous: dict[int, Any] = {}
    for people in by_person.values():
        people.sort(key=lambda f: (f.response.submitted_at, f.response.response_id))
        for before, after in pairwise(people):
            previous[id(after)] = before
    return previous


@given(answers, st.randoms())
def test_the_one_pass_index_equals_the_sorted_one_in_any_order(rows, rng) -> None:  # type: ignore[no-untyped-def]
    """In the store's order (a computation's) and in any other order, each answer's
    previous one is the same as when each respondent's answers are sorted."""
    facts = _facts(rows)
    by_response = {id(f.response): f for f in facts}
    stored = [f.response for f in facts]
    sort_as_stored(stored)
    in_store_order = [by_response[id(r)] for r in stored]
    shuffled = list(facts)
    rng.shuffle(shuffled)
    for sequence in (in_store_order, shuffled):
        expected = _sorted_index(sequence)
        previous = _index(sequence)
        asked = list(sequence)
        rng.shuffle(asked)  # the on-demand index sorts a respondent when first asked
        assert [previous(f) for f in asked] == [expected.get(id(f)) for f in asked]
        assert previous(_facts([(9, "hook", "r9", 0, None, 0)])[0]) is None  # not among them


def test_one_computations_answers_are_indexed_once_for_every_evaluation(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The alerts and escalation jobs read the same ``Answers``: the previous answers are
    indexed on the first question only, and answer as a plain list's index does."""
    facts = _facts([(0, "hook", "r1", 0, None, 0), (1, "hook", "r2", 0, None, 0)])
    built: list[int] = []

    def counting(responses: Any) -> Any:
        built.append(len(responses))
        return _index(responses)

    monkeypatch.setattr(history, "_index", counting)
    shared = Answers(facts)
    for _evaluation in range(2):
        assert RuleHistory(None, shared).previous_answer(facts[1]) is facts[0]
        assert RuleHistory(None, shared).previous_answer(facts[0]) is None
    assert built == [2]
    assert RuleHistory(None, list(facts)).previous_answer(facts[1]) is facts[0]
    assert built == [2, 2]  # a plain list: indexed by each evaluation
