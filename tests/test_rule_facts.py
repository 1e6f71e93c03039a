"""The answers path's rule inputs rank a few accounts exactly as a whole evaluation does."""

from __future__ import annotations

import gc
import weakref
from dataclasses import replace

from agent.core.compute import compute_with_matches
from agent.rules.facts import account_inputs, build_inputs
from tests.core_builders import AS_OF
from tests.plan.test_plan_rule import ACCOUNTS, CONFIG, CONTACTS, RESPONSES


def _document(accounts):  # type: ignore[no-untyped-def]
    document, _ = compute_with_matches(accounts, CONTACTS, RESPONSES, as_of=AS_OF, config=CONFIG)
    return document


def test_a_few_accounts_rank_as_in_the_whole_evaluation_document_after_document() -> None:
    first = _document(ACCOUNTS)
    # the next computation: revenues moved, so ranks and running shares do too
    moved = [replace(a, revenue=(a.revenue or 0) + 1000 * i) for i, a in enumerate(ACCOUNTS)]
    second = _document(moved)
    for document, accounts in ((first, ACCOUNTS), (second, moved), (first, ACCOUNTS)):
        whole = build_inputs(document, accounts).accounts
        metrics = {m.id: m for m in document.accounts}
        chosen_ids = [a.id for a in accounts][::-2]  # a few, out of the document's order
        chosen = {a.id: (a, metrics[a.id]) for a in accounts if a.id in chosen_ids}
        few = account_inputs(document, chosen, [], AS_OF).accounts
        assert list(few) == [a for a in whole if a in chosen]  # the document's order
        for account_id, facts in few.items():
            expected = whole[account_id]
            assert facts.revenue_rank == expected.revenue_rank
            assert facts.revenue_share == expected.revenue_share
            assert facts.cumulative_revenue_share == expected.cumulative_revenue_share
    assert [m.id for m in first.accounts] != [m.id for m in second.accounts]


def test_ranking_an_answer_in_a_document_does_not_keep_the_document_alive() -> None:
    """The ranking is built once per document and kept for the next answer, but the
    cache holds the document weakly: once the agent lets a document go (a newer one
    is published), it is freed, however many answers were ranked in it."""
    document = _document(ACCOUNTS)
    metrics = {m.id: m for m in document.accounts}
    chosen = {ACCOUNTS[0].id: (ACCOUNTS[0], metrics[ACCOUNTS[0].id])}
    first = account_inputs(document, chosen, [], AS_OF).accounts
    again = account_inputs(document, chosen, [], AS_OF).accounts
    assert first == again
    gone = weakref.ref(document)
    del document, first, again
    gc.collect()
    assert gone() is None
