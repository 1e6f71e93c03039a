"""The incremental figures equal a full recompute after any sequence of changes."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone
from random import Random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agent.core.compute import Excluded, compute_with_matches
from agent.core.contract import MetricsConfig
from agent.core.incremental import Figures
from agent.core.models import Account, Contact, Response, sort_as_stored
from tests.core_builders import AS_OF
from tests.test_properties import portfolios

CONFIG = MetricsConfig()
STEPS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _unique(responses: list[Response]) -> list[Response]:
    seen: dict[tuple[str, str], Response] = {}
    for r in responses:
        seen.setdefault((r.source, r.response_id), r)
    return list(seen.values())


def _stored(responses: list[Response]) -> list[Response]:
    return sorted(responses, key=lambda r: (r.submitted_at, r.source, r.response_id))


def _assert_same(
    figures: Figures,
    accounts: list[Account],
    contacts: list[Contact],
    responses: list[Response],
    as_of: datetime,
    *,
    excluded: Excluded | None = None,
) -> None:
    document, matches = compute_with_matches(
        accounts, contacts, _stored(responses), as_of=as_of, config=CONFIG, excluded=excluded
    )
    assert figures.document() == document
    assert figures.document().to_json_obj() == document.to_json_obj()
    assert figures.matches() == matches


@st.composite
def changes(draw: st.DrawFn) -> list[tuple[str, object]]:
    """A sequence of steps: new responses, a changed CRM, other rejected CRM accounts,
    another ``as_of``."""
    steps: list[tuple[str, object]] = []
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["responses", "crm", "edit", "left_out", "time", "time"]))
        if kind == "edit":
            # records edited where no response's match can move: revenue, names, titles,
            # tiers and the CRM's values of the agent's fields
            steps.append((kind, draw(st.lists(st.integers(0, 7), min_size=1, max_size=4))))
        elif kind == "responses":
            steps.append((kind, draw(portfolios())[2]))
        elif kind in {"crm", "left_out"}:
            steps.append((kind, draw(portfolios())[:2]))
        else:
            # around the window's end (365 days), the SLA (48 h) and recency thresholds
            seconds = draw(
                st.one_of(
                    st.integers(-3 * 86_400, 3 * 86_400),
                    st.sampled_from([48 * 3600, 48 * 3600 + 1, 365 * 86_400, -1, 1]),
                    st.integers(-400 * 86_400, 400 * 86_400),
                )
            )
            steps.append((kind, seconds))
    return steps


def _edited(
    accounts: list[Account], contacts: list[Contact], picks: list[int]
) -> tuple[list[Account], list[Contact]]:
    """The records at ``picks`` changed in what matching does not read."""
    accounts, contacts = list(accounts), list(contacts)
    for n, pick in enumerate(picks):
        if accounts and pick % 2 == 0:
            i = pick % len(accounts)
            a = accounts[i]
            accounts[i] = replace(
                a,
                revenue=a.revenue + pick + 1,
                name=f"{a.name}*",
                crm_values={**a.crm_values, "ax_nps": n},
            )
        elif contacts:
            i = pick % len(contacts)
            c = contacts[i]
            tier = ["executive", "frontline", None][pick % 3]
            contacts[i] = replace(
                c, title=f"{c.title} {pick}", crm_tier=tier, crm_values={"closed": str(n)}
            )
    return accounts, contacts


def _state(figures: Figures) -> tuple[object, ...]:
    """Everything a reader of published figures sees."""
    return (figures.as_of, figures.document(), figures.matches(), figures.accounts())


@given(
    start=portfolios(),
    left=portfolios(),
    steps=changes(),
    keep=st.booleans(),
    clones=st.lists(st.booleans(), min_size=6, max_size=6),
)
@STEPS
def test_incremental_equals_full_recompute_after_random_changes(
    start: tuple[list[Account], list[Contact], list[Response]],
    left: tuple[list[Account], list[Contact], list[Response]],
    steps: list[tuple[str, object]],
    keep: bool,
    clones: list[bool],
) -> None:
    """Each step changes the figures in place, or a ``clone()`` of them (as the cycle
    does once it published them): the clone equals a full recompute too, and the
    figures it came from read exactly as before."""
    accounts, contacts, responses = start
    responses = _unique(responses)
    as_of = AS_OF
    # accounts the CRM rejected, with their contacts: their answers are account_rejected
    excluded = Excluded(accounts=left[0], contacts=left[1])
    figures = Figures(CONFIG)
    figures.set_left_out(excluded)
    figures.load(accounts, contacts, responses)
    figures.refresh(as_of)
    _assert_same(figures, accounts, contacts, responses, as_of, excluded=excluded)
    for (kind, value), cloned in zip(steps, clones, strict=False):
        published, seen = figures, _state(figures)
        if cloned:
            figures = figures.clone()
        before = {a.id: a for a in figures.document().accounts}
        if kind == "responses":
            assert isinstance(value, list)
            known = {(r.source, r.response_id) for r in responses}
            new = [r for r in _unique(value) if (r.source, r.response_id) not in known]
            new = [replace(r, response_id=f"n{len(responses)}-{r.response_id}") for r in new]
            responses = responses + new
            layered = published.view(new, as_of, new=new)  # the answers path, unchanged
            figures.add_responses(new)
            assert layered == figures.view(new, as_of)
        elif kind == "crm":
            assert isinstance(value, tuple)
            new_accounts, new_contacts = value
            # keep some of the old portfolio so that changes are partial
            accounts = (accounts[:2] + new_accounts) if keep else new_accounts
            contacts = (contacts[:3] + new_contacts) if keep else new_contacts
            figures.set_crm(accounts, contacts)
        elif kind == "edit":
            assert isinstance(value, list)
            accounts, contacts = _edited(accounts, contacts, value)
            figures.set_crm(accounts, contacts)
        elif kind == "left_out":
            assert isinstance(value, tuple)
            excluded = Excluded(accounts=value[0], contacts=value[1])
            figures.set_left_out(excluded)
        else:
            assert isinstance(value, int)
            as_of = as_of + timedelta(seconds=value)
        report = figures.refresh(as_of)
        _assert_same(figures, accounts, contacts, responses, as_of, excluded=excluded)
        if cloned:
            assert _state(published) == seen  # what a reader of the published figures sees
        # the accounts the report names are all whose figures can have moved (history
        # compares only those)
        moved = {a.id for a in figures.document().accounts if before.get(a.id) != a}
        assert report.full or moved <= report.changed


_INSTANTS = [AS_OF - timedelta(days=d, hours=h) for d in (0, 1, 40) for h in (0, 5)]


@given(
    st.lists(
        st.tuples(
            st.sampled_from(_INSTANTS),
            st.sampled_from(["hook", "responses.csv", "Responses.csv"]),
            st.sampled_from(["r1", "r2", "R1", "r10", "é"]),
            st.integers(0, 10),
            st.sampled_from([timedelta(0), timedelta(hours=-5), timedelta(hours=2)]),
        ),
        max_size=40,
    )
)
def test_sort_as_stored_is_the_order_by_submitted_source_and_id(
    rows: list[tuple[datetime, str, str, int, timedelta]],
) -> None:
    """Three stable sorts give the one tuple-key sort's order exactly, full ties (the
    same instant in other offsets included) in their original order."""
    responses = [
        Response(rid, None, score, at.astimezone(timezone(offset)), source=source)
        for at, source, rid, score, offset in rows
    ]
    expected = sorted(responses, key=lambda r: (r.submitted_at, r.source, r.response_id))
    sort_as_stored(responses)
    assert [id(r) for r in responses] == [id(r) for r in expected]


@given(start=portfolios(), seed=st.randoms())
@STEPS
def test_a_load_in_the_stores_order_equals_a_load_in_any_order(
    start: tuple[list[Account], list[Contact], list[Response]], seed: Random
) -> None:
    """A load handed the store's order takes it as it is; one handed any order sorts
    it: the same figures either way."""
    accounts, contacts, responses = start
    responses = _unique(responses)
    shuffled = list(responses)
    seed.shuffle(shuffled)
    given_order, stored_order = Figures(CONFIG), Figures(CONFIG)
    given_order.load(accounts, contacts, shuffled)
    stored_order.load(accounts, contacts, _stored(responses), stored_order=True)
    for figures in (given_order, stored_order):
        figures.refresh(AS_OF)
        _assert_same(figures, accounts, contacts, responses, AS_OF)


def test_quiet_refresh_recomputes_nothing() -> None:
    account = Account(id="A1", name="Acme", domains=("a.com",), revenue=10.0)
    contact = Contact(id="C1", account_id="A1", email="p@a.com", title="CEO")
    answer = Response("r1", "p@a.com", 3, AS_OF - timedelta(days=1), source="s")
    figures = Figures(CONFIG)
    figures.load([account], [contact], [answer])
    assert figures.refresh(AS_OF).full
    quiet = figures.refresh(AS_OF)
    assert (quiet.full, quiet.accounts, quiet.rescored) == (False, 0, 0)


def test_a_new_response_recomputes_its_own_account_only() -> None:
    accounts = [
        Account(id=f"A{i}", name=f"N{i}", domains=(f"d{i}.com",), revenue=float(i))
        for i in range(20)
    ]
    figures = Figures(CONFIG)
    figures.load(accounts, [], [])
    figures.refresh(AS_OF)
    figures.add_responses([Response("r1", "x@d7.com", 2, AS_OF - timedelta(hours=1), source="s")])
    report = figures.refresh(AS_OF)
    assert report.accounts == 1
    assert report.changed == {"A7"}  # what history compares
    assert figures.document().portfolio.detractors == 1


def test_the_crms_own_values_and_a_revenue_recompute_only_what_they_touch() -> None:
    accounts = [
        Account(id=f"A{i}", name=f"N{i}", domains=(f"d{i}.com",), revenue=float(i))
        for i in range(20)
    ]
    contacts = [Contact(id=f"C{i}", account_id=f"A{i}", email=f"p@d{i}.com") for i in range(20)]
    answers = [Response(f"r{i}", f"p@d{i}.com", i % 11, AS_OF, source="s") for i in range(20)]
    figures = Figures(CONFIG)
    figures.load(accounts, contacts, answers)
    figures.refresh(AS_OF)
    # the agent's figures read back into every record: no figure rests on them
    written = [replace(c, crm_values={"ax_last_score": "3"}) for c in contacts]
    figures.set_crm([replace(a, crm_values={"ax_nps": 1}) for a in accounts], written)
    assert figures.refresh(AS_OF).accounts == 0
    seen = sorted((m.contact for m in figures.matches() if m.contact), key=lambda c: c.id)
    assert seen == sorted(written, key=lambda c: c.id)  # the rules see the new values
    # a new revenue: that account alone
    figures.set_crm([replace(a, revenue=99.0) if a.id == "A3" else a for a in accounts], written)
    assert figures.refresh(AS_OF).changed == {"A3"}


def test_a_detractor_crossing_the_sla_recomputes_its_account() -> None:
    accounts = [Account(id="A1", name="N", domains=("d.com",)), Account(id="A2", name="M")]
    figures = Figures(CONFIG)
    figures.load(accounts, [], [Response("r1", "x@d.com", 2, AS_OF, source="s")])
    figures.refresh(AS_OF)
    assert figures.document().accounts[0].overdue_detractors == 0
    report = figures.refresh(AS_OF + timedelta(hours=CONFIG.loop_sla_hours, seconds=1))
    assert report.accounts == 1
    by_id = {a.id: a for a in figures.document().accounts}
    assert by_id["A1"].overdue_detractors == 1


def test_removing_an_account_recounts_the_accounts_that_shared_its_respondent() -> None:
    """The same email answered via a hint (A0) and via a domain (A4); the later answer
    counted in A4. When A4 leaves the CRM, A0's answer becomes the one that counts."""
    accounts = [
        Account(id="A0", name="N0"),
        Account(id="A4", name="N4", domains=("a.com",)),
    ]
    answers = [
        Response("r1-0", "p0@a.com", 0, AS_OF, account_hint="A0", source="s"),
        Response("r1-12", "p0@a.com", 0, AS_OF, source="s"),
    ]
    figures = Figures(CONFIG)
    figures.load(accounts, [], answers)
    figures.refresh(AS_OF)
    figures.set_crm(accounts[:1], [])
    figures.refresh(AS_OF)
    _assert_same(figures, accounts[:1], [], answers, AS_OF)
    assert figures.document().accounts[0].respondents == 1


def test_answers_of_a_rejected_account_are_account_rejected_on_both_paths() -> None:
    """A contact of a rejected account answered, and someone at its domain: both are
    unmatched as ``account_rejected`` in the parts as in a full computation, from the
    first load on and after the account is no longer rejected."""
    kept = Account(id="A1", name="Kept", domains=("kept.com",), revenue=10.0)
    bad = Account(id="BAD", name="Bad", domains=("bad.com",))
    contact = Contact(id="C1", account_id="BAD", email="o@x.io", title="CEO")
    answers = [
        Response("r1", "o@x.io", 3, AS_OF - timedelta(days=1), source="s"),
        Response("r2", "p@bad.com", 9, AS_OF - timedelta(days=1), source="s"),
        Response("r3", "q@elsewhere.com", 9, AS_OF - timedelta(days=1), source="s"),
    ]
    excluded = Excluded(accounts=[bad], contacts=[contact])
    figures = Figures(CONFIG)
    figures.set_left_out(excluded)
    figures.load([kept], [], answers)
    figures.refresh(AS_OF)
    _assert_same(figures, [kept], [], answers, AS_OF, excluded=excluded)
    reasons = {u.response_id: u.reason for u in figures.document().unmatched}
    assert reasons == {"r1": "account_rejected", "r2": "account_rejected", "r3": "no_match"}

    figures.set_crm([kept, bad], [contact])  # the account's row was fixed
    figures.set_left_out(Excluded())
    figures.refresh(AS_OF)
    _assert_same(figures, [kept, bad], [contact], answers, AS_OF)
    assert [u.response_id for u in figures.document().unmatched] == ["r3"]

    figures.set_crm([kept], [])  # and rejected again
    figures.set_left_out(excluded)
    figures.refresh(AS_OF)
    _assert_same(figures, [kept], [], answers, AS_OF, excluded=excluded)
    assert len(figures.document().unmatched) == 3


def test_a_refresh_of_a_clone_leaves_the_published_figures_as_they_were() -> None:
    """Rescoring (only the recency moved) and new answers change the clone alone."""
    accounts = [
        Account(id="A1", name="Acme", domains=("a.com",), revenue=10.0),
        Account(id="A2", name="Brix", domains=("b.com",), revenue=5.0),
    ]
    old = [
        Response("r1", "p@a.com", 9, AS_OF - timedelta(days=100), source="s"),
        Response("r2", "q@b.com", 7, AS_OF - timedelta(days=10), source="s"),
    ]
    figures = Figures(CONFIG)
    figures.load(accounts, [], old)
    figures.refresh(AS_OF)
    published = _state(figures)
    twin = figures.clone()
    later = AS_OF + timedelta(days=1)
    assert twin.refresh(later).rescored == 1  # A1's recency score moved, nothing else
    # a refresh that only moved the instant copied none of the response indexes
    assert twin._matched is figures._matched
    assert twin._ordered is figures._ordered
    answer = Response("r3", "x@a.com", 1, later, source="s")
    twin.add_responses([answer])
    assert twin._matched is not figures._matched  # copied before the answer was placed
    twin.refresh(later)
    _assert_same(twin, accounts, [], [*old, answer], later)
    assert _state(figures) == published
    assert figures.account_of(answer) is None  # placed in the clone only


def test_a_crm_change_that_moves_no_match_keeps_the_matcher() -> None:
    """A revenue or a name changed, every email, domain and contact place as before: the
    matcher answers alike and is kept (the published figures share it; a new one beside
    theirs was about 70 MB at 500,000 contacts). An email changed: a new one."""
    config = MetricsConfig()
    accounts = [Account("A1", "One", ("one.example",), 10.0), Account("A2", "Two", (), 20.0)]
    contacts = [Contact("C1", "A1", "a@one.example"), Contact("C2", "A2", "b@two.example")]
    figures = Figures(config)
    figures.load(accounts, contacts, [])
    matcher = figures._matcher
    figures.set_crm([replace(accounts[0], revenue=99.0, name="Uno"), accounts[1]], contacts)
    assert figures._matcher is matcher
    figures.set_crm(accounts, [contacts[0], replace(contacts[1], email="c@two.example")])
    assert figures._matcher is not matcher
