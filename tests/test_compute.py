"""The whole cycle on small hand-computed portfolios: compute_document."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from structlog.testing import capture_logs

from agent.core.compute import compute_document
from agent.core.contract import MetricsConfig
from agent.core.document import AccountMetrics, ContactFigures, MetricsDocument, Unmatched
from agent.core.models import Account, Contact, Rejected, Response
from tests.core_builders import AS_OF, account, contact, days_ago, response


def run(
    accounts: list[Account],
    contacts: list[Contact],
    responses: list[Response],
    **kwargs: object,
) -> MetricsDocument:
    return compute_document(accounts, contacts, responses, as_of=AS_OF, **kwargs)  # type: ignore[arg-type]


def one(document: MetricsDocument, account_id: str) -> AccountMetrics:
    (found,) = [a for a in document.accounts if a.id == account_id]
    return found


def test_strict_nps_counts_silent_contacts() -> None:
    """4 contacts with email, 2 answered (P and D), plus one contact-less promoter."""
    contacts = [
        contact("C1", "A", "p@a.com"),
        contact("C2", "A", "d@a.com"),
        contact("C3", "A", "s1@a.com"),
        contact("C4", "A", "s2@a.com"),
        contact("C5", "A", None),  # no email: not in C
    ]
    responses = [
        response("1", "p@a.com", 10),
        response("2", "d@a.com", 0),
        response("3", "guest@a.com", 9),
    ]
    got = one(run([account("A", 10, domains=("a.com",))], contacts, responses), "A")
    # P=2, D=1, R=3, C=4, RC=2 → nps 100·1/3; strict 100·(2-1-2)/(3+2) = -20
    assert (got.contacts, got.respondents, got.promoters, got.detractors) == (4, 3, 2, 1)
    assert got.nps == pytest.approx(100 / 3)
    assert got.nps_strict == pytest.approx(-20.0)
    assert got.contact_coverage == 0.5


def test_latest_response_per_respondent_and_tie_break() -> None:
    same = days_ago(2)
    responses = [
        response("r1", "ann@a.com", 0, at=days_ago(30)),
        response("r2", "ann@a.com", 10, at=days_ago(3)),  # latest of Ann
        response("r08", "x@a.com", 0, at=same),
        response("r10", "x@a.com", 8, at=same),  # tie: larger id "r10" > "r08"
        response("r9", "y@a.com", 0, at=same),  # tie: "r9" > "r10" in string order
        response("r10", "y@a.com", 10, at=same, source="other"),
    ]
    document = run(
        [account("A", 1, domains=("a.com",))], [contact("C1", "A", "ann@a.com")], responses
    )
    got = one(document, "A")
    assert (got.respondents, got.promoters, got.passives, got.detractors) == (3, 1, 1, 1)


def test_window_edges_in_a_cycle() -> None:
    responses = [
        response("edge", "a@a.com", 10, at=AS_OF - timedelta(days=365)),
        response("out", "b@a.com", 0, at=AS_OF - timedelta(days=365, seconds=1)),
        response("now", "c@a.com", 10, at=AS_OF),
        response("future", "d@a.com", 0, at=AS_OF + timedelta(seconds=1)),
    ]
    got = one(run([account("A", 1, domains=("a.com",))], [], responses), "A")
    assert (got.respondents, got.promoters, got.detractors) == (2, 2, 0)


def test_window_days_from_config() -> None:
    responses = [response("a", "a@a.com", 10, at=days_ago(31))]
    document = run(
        [account("A", 1, domains=("a.com",))], [], responses, config=MetricsConfig(window_days=30)
    )
    assert one(document, "A").respondents == 0


def test_old_responses_still_count_as_the_same_respondent_only_in_window() -> None:
    """An out-of-window later answer does not hide an in-window earlier one."""
    responses = [
        response("old", "a@a.com", 10, at=days_ago(10)),
        response("newer", "a@a.com", 0, at=AS_OF + timedelta(days=1)),
    ]
    got = one(run([account("A", 1, domains=("a.com",))], [], responses), "A")
    assert (got.respondents, got.promoters) == (1, 1)


def test_one_email_answering_for_two_accounts_counts_once_for_its_latest() -> None:
    accounts = [account("A", 1), account("B", 1)]
    responses = [
        response("1", "free@gmail.com", 10, hint="A", at=days_ago(5)),
        response("2", "FREE@gmail.com", 0, hint="B", at=days_ago(4)),
    ]
    document = run(accounts, [], responses)
    assert one(document, "A").respondents == 0
    assert one(document, "B").detractors == 1
    assert document.portfolio.nps == -100.0


def test_contact_less_answers_without_email_are_respondents_of_their_own() -> None:
    responses = [response("1", None, 10, hint="A"), response("2", "", 0, hint="A")]
    got = one(run([account("A", 1)], [], responses), "A")
    assert (got.respondents, got.promoters, got.detractors) == (2, 1, 1)
    assert got.contact_coverage is None  # no contacts
    assert got.nps_strict == 0.0


def test_tiers_misalignment_and_executive_detractor() -> None:
    contacts = [
        contact("E", "A", "e@a.com", title="CEO"),
        contact("M", "A", "m@a.com", title="Head of IT"),
        contact("F", "A", "f@a.com", title="Engineer"),
        contact("U", "A", "u@a.com"),  # unknown tier
    ]
    responses = [
        response("1", "e@a.com", 5),
        response("2", "m@a.com", 9),
        response("3", "f@a.com", 10),
        response("4", "u@a.com", 0),
        response("5", "guest@a.com", 0),  # contact-less: tier unknown
    ]
    got = one(run([account("A", 1, domains=("a.com",))], contacts, responses), "A")
    assert got.tiers_covered == ["executive", "frontline", "management"]
    assert got.tier_coverage == 1.0
    assert got.tier_nps == {"executive": -100.0, "frontline": 100.0, "management": 100.0}
    assert got.tier_misaligned
    assert got.at_risk  # an executive detractor
    # nps = 100·(2-3)/5 = -20; cc = 4/4; health = 0.6·40 + 0.25·100·1 + 0.15·100 - 20 = 44
    assert got.health_score == pytest.approx(44.0)
    assert got.health_status == "neutral"


def test_health_threshold_float_noise_does_not_flip_status() -> None:
    """Built so the exact health is 70 (the float result may sit a hair below it)."""
    # two frontline contacts answer 10 and 8: nps 50, contact coverage 1, tier coverage 1/3
    # → 0.6·75 + 25·(4/3)/2 + 0.15·recency = 70 when recency = (70 - 45 - 50/3) / 0.15
    recency = (70 - 45 - 50 / 3) / 0.15
    age = 365 - recency * 275 / 100
    contacts = [
        contact("C1", "A", "c1@a.com", title="Engineer"),
        contact("C2", "A", "c2@a.com", title="Engineer"),
    ]
    responses = [
        response("1", "c1@a.com", 10, at=days_ago(age)),
        response("2", "c2@a.com", 8, at=days_ago(age + 1)),
    ]
    got = one(run([account("A", 1, domains=("a.com",))], contacts, responses), "A")
    assert got.nps == 50.0
    assert got.health_score == pytest.approx(70.0, abs=1e-9)
    assert got.health_status == "healthy"


def test_open_overdue_and_closed_detractors() -> None:
    responses = [
        response("1", "a@a.com", 0, at=AS_OF - timedelta(hours=48)),  # open, not overdue
        response("2", "b@a.com", 6, at=days_ago(3)),  # open, overdue
        response("3", "c@a.com", 2, at=days_ago(3), closed=days_ago(2)),  # closed in 24 h
        response("4", "d@a.com", 2, at=days_ago(5), closed=days_ago(2)),  # closed in 72 h
        response("5", "e@a.com", 9, at=days_ago(3)),
    ]
    document = run([account("A", 1, domains=("a.com",))], [], responses)
    got = one(document, "A")
    assert (got.open_detractors, got.overdue_detractors) == (2, 1)
    assert document.portfolio.detractors == 4
    assert document.portfolio.detractors_closed_in_sla == 1
    assert document.portfolio.closed_loop_rate == 0.25


def test_loop_sla_from_config() -> None:
    responses = [response("1", "a@a.com", 0, at=days_ago(3), closed=days_ago(1))]
    document = run(
        [account("A", 1, domains=("a.com",))],
        [],
        responses,
        config=MetricsConfig(loop_sla_hours=49),
    )
    assert document.portfolio.detractors_closed_in_sla == 1


def test_upsell_at_exactly_half_the_potential() -> None:
    accounts = [
        account("A", 500, domains=("a.com",), potential=1000),
        account("B", 501, domains=("b.com",), potential=1000),
    ]
    promoters = [response("1", "x@a.com", 10), response("2", "x@b.com", 10)]
    document = run(accounts, [], promoters)
    assert one(document, "A").upsell_candidate  # nps 100, revenue = 0.5·potential
    assert not one(document, "B").upsell_candidate  # revenue > 0.5·potential
    # nps exactly 50 (P=2, N=2) still counts; 100·1/3 does not
    at_fifty = [response(str(i), f"p{i}@a.com", s) for i, s in enumerate([10, 10, 8, 8])]
    assert one(run(accounts, [], at_fifty), "A").upsell_candidate
    below = [response(str(i), f"p{i}@a.com", s) for i, s in enumerate([10, 8, 8])]
    assert not one(run(accounts, [], below), "A").upsell_candidate


def test_recency_and_last_response() -> None:
    responses = [
        response("1", "a@a.com", 10, at=days_ago(200)),
        response("2", "b@a.com", 10, at=days_ago(100)),
    ]
    got = one(run([account("A", 1, domains=("a.com",))], [], responses), "A")
    assert got.last_response_at == days_ago(100)
    assert got.recency_score == pytest.approx(100 * 265 / 275)


def test_account_without_feedback() -> None:
    got = one(run([account("A", 5)], [contact("C", "A", "c@a.com")], []), "A")
    assert got.nps is None
    assert got.nps_strict == -100.0
    assert got.contact_coverage == 0.0
    assert (got.health_score, got.health_status, got.at_risk) == (None, "no_feedback", False)
    assert (got.recency_score, got.last_response_at) == (None, None)
    assert (got.tiers_covered, got.tier_nps, got.tier_misaligned) == ([], {}, False)


def test_portfolio_figures() -> None:
    accounts = [
        account("A", 600, domains=("a.com",)),
        account("B", 300, domains=("b.com",)),
        account("C", 100, domains=("c.com",)),
    ]
    contacts = [
        contact("1", "A", "ceo@a.com", title="CEO"),
        contact("2", "A", "m@a.com", title="Manager"),
        contact("3", "A", "f@a.com", title="Agent"),
        contact("4", "B", "b@b.com"),
    ]
    responses = [
        response("1", "ceo@a.com", 10),
        response("2", "m@a.com", 10),
        response("3", "f@a.com", 6),
        response("4", "x@c.com", 0),
    ]
    p = run(accounts, contacts, responses).portfolio
    assert (p.accounts, p.accounts_with_feedback) == (3, 2)
    assert p.account_coverage == pytest.approx(2 / 3)
    assert (p.total_revenue, p.covered_revenue, p.revenue_coverage) == (1000.0, 700.0, 0.7)
    assert (p.contacts, p.responded_contacts, p.response_rate) == (4, 3, 0.75)
    assert p.nps == 0.0  # P=2, D=2, R=4
    assert p.nps_strict == pytest.approx(100 * (2 - 2 - 1) / 5)
    # A: nps 100·1/3; C: -100 → (600·33.3 - 100·100) / 700
    assert p.revenue_weighted_nps == pytest.approx((600 * 100 / 3 - 100 * 100) / 700)
    assert p.full_tier_coverage_accounts == 1
    assert (p.at_risk_accounts, p.at_risk_revenue) == (1, 100.0)


def test_empty_portfolio() -> None:
    p = run([], [], []).portfolio
    assert p.accounts == 0
    assert p.account_coverage is None
    assert p.revenue_coverage is None
    assert p.response_rate is None
    assert p.nps is None
    assert p.nps_strict is None
    assert p.revenue_weighted_nps is None
    assert p.closed_loop_rate is None


def test_accounts_sorted_by_revenue_then_id() -> None:
    accounts = [account("b", 10), account("a", 10), account("z", 20), account("c", 0)]
    assert [a.id for a in run(accounts, [], []).accounts] == ["z", "a", "b", "c"]


def test_drivers_revenue_sums_to_covered_revenue() -> None:
    accounts = [account("A", 700, domains=("a.com",)), account("B", 300, domains=("b.com",))]
    responses = [
        response(str(i), f"p{i}@a.com", s, driver=d)
        for i, (s, d) in enumerate([(10, "Support"), (0, " Product "), (8, ""), (9, "Support")])
    ] + [response("9", "x@b.com", 3, driver="support")]
    document = run(accounts, [], responses)
    names = [d.driver for d in document.drivers]
    assert names == ["Product", "Support", "support", None]
    support = document.drivers[1]
    assert support.promoter_revenue == pytest.approx(350.0)  # 2 of A's 4 respondents
    total = sum(
        d.promoter_revenue + d.passive_revenue + d.detractor_revenue for d in document.drivers
    )
    assert total == pytest.approx(document.portfolio.covered_revenue)


def test_unmatched_lists_every_unmatched_answer_whatever_its_age() -> None:
    accounts = [
        account("A", domains=("a.com", "shared.com")),
        account("B", domains=("shared.com",)),
    ]
    responses = [
        response("u3", "x@shared.com", 5),
        response("u1", "y@gmail.com", 10, at=days_ago(900)),
        response("u2", None, 3),
        response("m", "ok@a.com", 9),
    ]
    assert run(accounts, [], responses).unmatched == [
        Unmatched("u1", "y@gmail.com", "free_mail_domain"),
        Unmatched("u2", None, "no_match"),
        Unmatched("u3", "x@shared.com", "ambiguous_domain"),
    ]


def test_rejected_pass_through() -> None:
    rejected = [Rejected("responses.csv", 3, "invalid_score")]
    assert run([], [], [], rejected=rejected).rejected == rejected


def test_contact_figures() -> None:
    contacts = [
        contact("C1", "A", "ann@a.com", title="CEO"),
        contact("C2", "A", "bob@a.com"),  # email, unknown tier, no answer
        contact("C3", "A", None, title="Engineer"),  # tier but no email
        contact("C4", "A", None),  # neither: left out
        contact("C5", "GONE", "g@a.com", title="CEO"),  # unknown account: left out
    ]
    responses = [
        response("1", "ann@a.com", 9, at=days_ago(3)),
        response("2", "ann@a.com", 4, at=days_ago(9)),
        response("3", "bob@a.com", 10, at=days_ago(400)),  # outside the window
    ]
    figures = run([account("A", 1)], contacts, responses).contacts
    assert figures == [
        ContactFigures("C1", "A", "executive", 9, "promoter", days_ago(3)),
        ContactFigures("C2", "A", "unknown"),
        ContactFigures("C3", "A", "frontline"),
    ]
    without = run([account("A", 1)], contacts, responses, contact_figures=False)
    assert without.contacts == []
    assert without.to_json_obj() == run([account("A", 1)], contacts, responses).to_json_obj()


def test_first_account_of_an_id_wins_and_contacts_of_unknown_accounts_are_ignored() -> None:
    accounts = [account("A", 10, name="first"), account("A", 99, name="second")]
    contacts = [contact("C1", "X", "c@x.com"), contact("C2", "A", "a@x.com")]
    document = run(accounts, contacts, [response("1", "c@x.com", 9)])
    assert [(a.id, a.name, a.revenue, a.contacts) for a in document.accounts] == [
        ("A", "first", 10.0, 1)
    ]
    assert document.unmatched == [Unmatched("1", "c@x.com", "no_match")]


def test_as_of_defaults_to_now_and_naive_means_utc() -> None:
    before = datetime.now(UTC)
    document = compute_document([], [], [])
    assert before <= document.as_of <= datetime.now(UTC)
    naive = compute_document([], [], [], as_of=datetime(2025, 6, 1, 12))
    assert naive.as_of == AS_OF


def test_as_of_keeps_its_offset_in_the_document() -> None:
    from datetime import timezone

    as_of = datetime(2025, 6, 1, 14, tzinfo=timezone(timedelta(hours=2)))
    document = compute_document([], [], [], as_of=as_of)
    assert document.to_json_obj()["as_of"] == "2025-06-01T14:00:00+02:00"


def test_inputs_may_be_one_shot_iterables() -> None:
    document = compute_document(
        iter([account("A", 1, domains=("a.com",))]),
        iter([contact("C", "A", "c@a.com")]),
        iter([response("1", "c@a.com", 10)]),
        as_of=AS_OF,
    )
    assert one(document, "A").respondents == 1


def test_one_summary_event_per_computation() -> None:
    with capture_logs() as events:
        run([account("A", 1)], [], [response("1", "x@nowhere.com", 9)])
    (event,) = [e for e in events if e["event"] == "metrics.computed"]
    assert (event["accounts"], event["unmatched"], event["counted"]) == (1, 1, 0)


def test_garbage_collection_is_restored() -> None:
    import gc

    assert gc.isenabled()
    run([], [], [])
    assert gc.isenabled()
    gc.disable()
    try:
        run([], [], [])
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_the_collector_stays_paused_until_the_last_thread_pausing_it_is_done() -> None:
    """The scheduler's job pauses the collector for seconds; the answers worker pauses
    it for one account meanwhile: the worker's end must not switch it on under the job."""
    import gc
    import threading

    from agent.core.compute import without_gc

    release = threading.Event()

    def paused_worker() -> threading.Thread:
        """A thread inside ``without_gc`` until ``release``, returned once inside."""
        entered = threading.Event()

        def worker() -> None:
            with without_gc():
                entered.set()
                assert release.wait(10)

        thread = threading.Thread(target=worker)
        thread.start()
        assert entered.wait(10)
        return thread

    assert gc.isenabled()
    with without_gc():  # the job
        thread = paused_worker()
        assert not gc.isenabled()
        release.set()
        thread.join(10)
        assert not gc.isenabled()  # the worker is done, the job is not
    assert gc.isenabled()

    # the job ends first: the worker's computation stays paused until its own end
    release.clear()
    with without_gc():
        thread = paused_worker()
    assert not gc.isenabled()
    release.set()
    thread.join(10)
    assert gc.isenabled()


def test_one_counted_answer_per_score_six_to_ten_sorts_into_p_n_d() -> None:
    """6 is a detractor, 7 and 8 passives, 9 and 10 promoters (DOMAIN.md categories)."""
    scores = (6, 7, 8, 9, 10)
    contacts = [contact(f"C{s}", "A", f"s{s}@a.com") for s in scores]
    responses = [response(f"r{s}", f"s{s}@a.com", s) for s in scores]
    got = one(run([account("A", 10, domains=("a.com",))], contacts, responses), "A")
    assert got.respondents == 5
    assert (got.promoters, got.passives, got.detractors) == (2, 2, 1)
    assert got.nps == pytest.approx(100 * (2 - 1) / 5)  # 20
