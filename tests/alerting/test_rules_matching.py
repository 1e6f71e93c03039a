"""Per-response facts for ``rules test``: DOMAIN.md's matching and counting."""

from __future__ import annotations

from datetime import timedelta

from factories import AS_OF

from agent.config import MetricsConfig
from agent.models import Account, Contact, Response
from agent.rules._matching import build_response_facts, tier_of

CONFIG = MetricsConfig()


def _response(rid: str, email: str | None, days: float = 1, hint: str | None = None) -> Response:
    return Response(rid, email, 3, AS_OF - timedelta(days=days), account_hint=hint, source="r.csv")


def test_tiers_from_crm_value_then_title() -> None:
    assert tier_of(Contact("c", "a", title="Clerk", crm_tier=" Executive "), CONFIG) == "executive"
    assert tier_of(Contact("c", "a", title="VP Sales"), CONFIG) == "executive"
    assert tier_of(Contact("c", "a", title="Head of IT"), CONFIG) == "management"
    assert tier_of(Contact("c", "a", title="Engineer"), CONFIG) == "frontline"
    assert tier_of(Contact("c", "a", title=" "), CONFIG) == "unknown"


def test_matching_order_and_counting() -> None:
    accounts = [
        Account("A", "Acme", domains=("https://www.acme.example/about",)),
        Account("B", "Beta", domains=("beta.example",)),
        Account("C", "Gamma", domains=("beta.example", "gmail.com")),
    ]
    contacts = [Contact("c1", "A", email=" Dana@Acme.example ", title="CFO")]
    responses = [
        _response("1", "dana@acme.example", days=3),
        _response("2", "DANA@acme.example", days=1),  # same respondent, later: counts
        _response("3", "x@unknown.example", hint="B"),
        _response("4", "y@acme.example"),  # domain match
        _response("5", "z@beta.example"),  # ambiguous: unmatched
        _response("6", "q@gmail.com"),  # free mail: unmatched
        _response("7", "old@acme.example", days=400),  # outside the window
    ]
    facts = {
        f.response.response_id: f
        for f in build_response_facts(accounts, contacts, responses, as_of=AS_OF, config=CONFIG)
    }
    assert sorted(facts) == ["1", "2", "3", "4", "7"]
    assert (facts["2"].account.id, facts["2"].tier, facts["2"].counted) == ("A", "executive", True)
    assert facts["1"].counted is False
    assert (facts["3"].account.id, facts["3"].contact) == ("B", None)
    assert (facts["4"].account.id, facts["4"].tier, facts["4"].counted) == ("A", "unknown", True)
    assert facts["7"].counted is False
