"""compute_with_matches: the same document, plus every matched response and whether it counts."""

from __future__ import annotations

from datetime import UTC, datetime

from agent.core.compute import compute_document, compute_with_matches
from agent.core.models import Account, Contact, Response

AS_OF = datetime(2025, 6, 1, 12, tzinfo=UTC)


def _r(rid: str, email: str, score: int, day: int, hint: str | None = None) -> Response:
    return Response(rid, email, score, datetime(2025, 5, day, tzinfo=UTC), account_hint=hint)


def test_matches_carry_account_contact_tier_and_counted() -> None:
    accounts = [Account("A1", "Alpha", ("alpha.com",), 100.0), Account("A2", "Beta", (), 50.0)]
    contacts = [
        Contact("C1", "A1", "ceo@alpha.com", title="CEO"),
        Contact("C2", "A1", "eng@alpha.com", title="Engineer"),
    ]
    responses = [
        _r("r1", "CEO@alpha.com", 3, 1),
        _r("r2", "ceo@alpha.com", 9, 2),  # later answer of the same person: only this counts
        _r("r3", "new@alpha.com", 10, 3),  # domain match, no contact
        _r("r4", "x@gmail.com", 8, 3, hint="A2"),  # hint
        _r("r5", "x@nowhere.example", 8, 3),  # unmatched: not in the list
    ]
    doc, matches = compute_with_matches(accounts, contacts, responses, as_of=AS_OF)
    assert doc == compute_document(accounts, contacts, responses, as_of=AS_OF)
    got = {
        m.response.response_id: (m.account.id, m.contact and m.contact.id, m.tier, m.counted)
        for m in matches
    }
    assert got == {
        "r1": ("A1", "C1", "executive", False),
        "r2": ("A1", "C1", "executive", True),
        "r3": ("A1", None, "unknown", True),
        "r4": ("A2", None, "unknown", True),
    }
