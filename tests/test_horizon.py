"""The metrics document holds until its horizon, and something can change at it."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.core.compute import compute_with_matches
from agent.core.contract import MetricsConfig
from agent.core.document import MetricsDocument
from agent.core.horizon import TICK, document_horizon, earliest
from agent.core.models import Account, Contact, Response
from tests.core_builders import AS_OF
from tests.test_properties import portfolios

CONFIG = MetricsConfig()
CHECKS = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _document(
    accounts: list[Account], contacts: list[Contact], responses: list[Response], at: datetime
) -> tuple[MetricsDocument, object]:
    return compute_with_matches(accounts, contacts, responses, as_of=at, config=CONFIG)


def _body(document: MetricsDocument) -> str:
    """The document apart from its ``as_of``."""
    data = document.to_json_obj()
    data.pop("as_of")
    return json.dumps(data, sort_keys=True)


def _spread(responses: list[Response], shifts: list[int]) -> list[Response]:
    """Answers moved around the window's end, the SLA and the recency threshold."""
    out = []
    for i, r in enumerate(responses):
        shift = shifts[i % len(shifts)] if shifts else 0
        out.append(replace(r, submitted_at=r.submitted_at - timedelta(seconds=shift)))
    return out


_SHIFTS = st.lists(
    st.one_of(
        st.sampled_from([0, 47 * 3600, 48 * 3600, 89 * 86_400, 90 * 86_400, 364 * 86_400]),
        st.integers(-3 * 86_400, 366 * 86_400),
    ),
    max_size=6,
)


@given(start=portfolios(), shifts=_SHIFTS, fractions=st.lists(st.floats(0, 1), max_size=4))
@CHECKS
def test_the_document_holds_until_the_horizon_and_can_change_there(
    start: tuple[list[Account], list[Contact], list[Response]],
    shifts: list[int],
    fractions: list[float],
) -> None:
    accounts, contacts, responses = start
    responses = _spread(responses, shifts)
    document, matches = _document(accounts, contacts, responses, AS_OF)
    horizon = document_horizon(document, matches, CONFIG)  # type: ignore[arg-type]
    body = _body(document)
    end = horizon if horizon is not None else AS_OF + timedelta(days=800)
    assert end > AS_OF
    for fraction in [0.0, *fractions]:
        at = AS_OF + (end - AS_OF) * fraction
        at = min(at, end - TICK)
        assert _body(_document(accounts, contacts, responses, at)[0]) == body, at
    assert _body(_document(accounts, contacts, responses, end - TICK)[0]) == body
    if horizon is not None and horizon > AS_OF + TICK:
        # a discrete event (window, SLA, recency threshold): it shows at the horizon
        assert _body(_document(accounts, contacts, responses, horizon)[0]) != body


def test_earliest_ignores_unknown_instants() -> None:
    assert earliest(None, None) is None
    assert earliest(AS_OF, None, AS_OF - TICK) == AS_OF - TICK


def test_a_falling_recency_score_holds_for_its_own_instant_only() -> None:
    account = Account(id="A1", name="Acme", domains=("a.com",), revenue=10.0)
    contact = Contact(id="C1", account_id="A1", email="p@a.com", title="CEO")
    answer = Response("r1", "p@a.com", 9, AS_OF - timedelta(days=100), source="s")
    document, matches = _document([account], [contact], [answer], AS_OF)
    assert document_horizon(document, matches, CONFIG) == AS_OF + TICK  # type: ignore[arg-type]


def test_an_open_detractor_turns_overdue_right_after_the_sla() -> None:
    account = Account(id="A1", name="Acme", domains=("a.com",), revenue=10.0)
    contact = Contact(id="C1", account_id="A1", email="p@a.com", title="CEO")
    submitted = AS_OF - timedelta(hours=47)
    answer = Response("r1", "p@a.com", 3, submitted, source="s")
    document, matches = _document([account], [contact], [answer], AS_OF)
    horizon = document_horizon(document, matches, CONFIG)  # type: ignore[arg-type]
    assert horizon == submitted + timedelta(hours=48) + TICK
    closed = replace(answer, loop_closed_at=AS_OF)
    document, matches = _document([account], [contact], [closed], AS_OF)
    later = document_horizon(document, matches, CONFIG)  # type: ignore[arg-type]
    assert later == submitted + timedelta(days=90) + TICK  # recency starts to fall
