"""The change functions and the shipped change rules over a scripted sequence of cycles.

Each cycle computes the document from a portfolio, records its history (as the agent's
write-back job does) and then evaluates the shipped rules with the stored history (as
the alerts job does).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.config.settings import SlackSettings
from agent.core.compute import compute_with_matches
from agent.core.models import Account, Contact, Response
from agent.rules.evaluate import Evaluation, evaluate
from agent.rules.expr import ExprError, compile_expr
from agent.rules.facts import account_inputs, build_inputs, response_facts
from agent.rules.history import HistoryRow, RuleHistory
from agent.rules.loader import RuleSet, load_rules
from agent.state.history import HistoryRepo, StoredHistory
from agent.state.store import StateStore
from tests.core_builders import account, contact, response

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)
T0, T1, T2 = NOW - timedelta(days=30), NOW - timedelta(days=7), NOW


@pytest.fixture(scope="module")
def shipped() -> RuleSet:
    slack = SlackSettings()
    return load_rules(REPO / "rules", channels=set(slack.channels), routes=slack.routes)


def _accounts(late: bool) -> list[Account]:
    found = [account("A", 1000, domains=("a.com",)), account("B", 500, domains=("b.com",))]
    if late:  # a large account without feedback joins: revenue coverage falls
        found.append(account("C", 3000, domains=("c.com",)))
    return found


CONTACTS: list[Contact] = [
    contact("a1", "A", "ceo@a.com", title="CEO"),
    contact("a2", "A", "dev@a.com", title="Engineer"),
    contact("b1", "B", "cfo@b.com", title="CFO"),
    contact("b2", "B", "coo@b.com", title="COO"),
]


def _answers(late: bool) -> list[Response]:
    early = T0 - timedelta(days=1)
    found = [
        response("r1", "ceo@a.com", 10, at=early),
        response("r2", "dev@a.com", 9, at=early),
        response("r3", "cfo@b.com", 10, at=early),
        response("r7", "coo@b.com", 9, at=early),
    ]
    if late:
        late_at = T2 - timedelta(hours=1)
        found += [
            response("r4", "ceo@a.com", 2, at=late_at),  # a detractor: its own alert
            response("r5", "dev@a.com", 1, at=late_at),
            response("r6", "cfo@b.com", 7, at=late_at),  # an executive drops by 3
            response("r8", "coo@b.com", 8, at=late_at),  # by 1: no alert
        ]
    return found


def _cycle(store: StateStore, shipped: RuleSet, at: datetime, *, late: bool) -> Evaluation:
    document, matches = compute_with_matches(_accounts(late), CONTACTS, _answers(late), as_of=at)
    HistoryRepo(store).record("files", document)
    inputs = build_inputs(
        document,
        _accounts(late),
        response_facts(matches),
        history=StoredHistory(store, "files"),
    )
    return evaluate(shipped.rules, inputs)


def _texts(evaluation: Evaluation) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for match in evaluation.matches:
        out.setdefault(match.rule.id, []).append(match.text)
    return out


def test_the_change_rules_fire_on_a_scripted_sequence(state_url: str, shipped: RuleSet) -> None:
    with StateStore.open(state_url) as store:
        first = _texts(_cycle(store, shipped, T0, late=False))
        assert not {"health-dropped-30d", "turned-at-risk", "revenue-coverage-fell"} & set(first)
        assert "executive-score-dropped" not in first
        second = _texts(_cycle(store, shipped, T1, late=False))
        assert not {"health-dropped-30d", "turned-at-risk", "revenue-coverage-fell"} & set(second)
        third = _texts(_cycle(store, shipped, T2, late=True))
        assert third["health-dropped-30d"] == [
            "Account A: health 96 → 36 in 30 days (-60.0); NPS 100.0 → -100.0",
            "Account B: health 92 → 62 in 30 days (-30.0); NPS 100.0 → 0.0",
        ]
        (turned,) = third["turned-at-risk"]
        assert "turned at risk after 30 days healthy: health 96 → 36" in turned
        (coverage,) = third["revenue-coverage-fell"]
        assert coverage.startswith("Revenue coverage fell from 100 % to 33 % in a week")
        (executive,) = third["executive-score-dropped"]  # the CFO (10 -> 7), not the COO (9 -> 8)
        assert (
            "(CFO) at Account B scored 10 → 7 (-3.0 since their previous answer of 2025-05-01)"
            in executive
        )
        assert "scored 2 (before: 10)" in third["executive-detractor"][0]
        assert "NPS 100.0 → 100.0 (+0.0 week over week)" in second["weekly-digest"][0]
        assert third["weekly-digest"][0].startswith("NPS 100.0 → -50.0 (-150.0 week over week)")
        # The next cycle: still 60 points down over 30 days, but nothing changed since.
        fourth = _texts(_cycle(store, shipped, T2 + timedelta(hours=1), late=True))
        assert "health-dropped-30d" in fourth
        assert "turned-at-risk" not in fourth


def _account_fn(text: str):  # type: ignore[no-untyped-def]
    return compile_expr(text, "account", expect=None).fn


def test_since_held_and_changed_read_the_stored_runs(sqlite_url: str, shipped: RuleSet) -> None:
    with StateStore.open(sqlite_url) as store:
        for at, late in ((T0, False), (T1, False), (T2, True)):
            document, _ = compute_with_matches(_accounts(late), CONTACTS, _answers(late), as_of=at)
            HistoryRepo(store).record("files", document)
        later = T2 + timedelta(days=2)
        document, _ = compute_with_matches(_accounts(True), CONTACTS, _answers(True), as_of=later)
        inputs = build_inputs(document, _accounts(True), (), history=StoredHistory(store, "files"))
        a, p = inputs.accounts["A"], inputs.portfolio
        run = lambda text: _account_fn(text)(None, a, p, later, inputs.history)  # noqa: E731
        assert run("since(account.health_status)") == pytest.approx(2.0)
        assert run("held(account.health_status)") == pytest.approx(30.0)
        assert run("changed(account.health_status)") is False
        assert run('previous(account.health_status, "10d")') == "healthy"
        assert run('previous(account.last_response_at, "10d")') == T0 - timedelta(days=1)
        assert run('previous(account.health_score, "400d")') is None  # before any history
        assert run("since(portfolio.revenue_coverage)") == pytest.approx(2.0)
        assert run("held(portfolio.revenue_coverage)") == pytest.approx(30.0)
        without = build_inputs(document, _accounts(True), ())
        assert (
            _account_fn('delta(account.health_score, "30d")')(
                None, without.accounts["A"], p, later, without.history
            )
            is None
        )  # no stored history: null, so the rule does not fire


@pytest.mark.parametrize(
    ("text", "column", "message"),
    [
        ("previous(account.revenue_rank)", 10, "account.revenue_rank is not one"),
        ('delta(account.health_status, "30d")', 7, "delta() needs a number"),
        ('previous(account.nps, "30x")', 23, "is not a duration"),
        ("previous(account.nps, 30)", 23, "the duration must be quoted"),
        ('changed(account.nps, "7d")', 1, "changed() takes a field"),
        ("since(account.nps + 1)", 7, "needs a field such as"),
        ("previous(account.nsp)", 10, "did you mean 'nps'"),
        ("previous(account.health_status) > 3", 35, "cannot order"),
    ],
)
def test_change_functions_are_type_checked(text: str, column: int, message: str) -> None:
    with pytest.raises(ExprError) as caught:
        compile_expr(text, "account")
    assert message in caught.value.message
    assert caught.value.column == column


def test_response_history_is_the_respondents_previous_answer() -> None:
    with pytest.raises(ExprError, match="takes no duration"):
        compile_expr('previous(response.score, "7d")', "response")
    with pytest.raises(ExprError, match="applies to account and portfolio"):
        compile_expr("since(response.score)", "response")
    compile_expr("changed(response.score) and delta(response.score) <= -3", "response")


def test_a_rule_file_error_names_file_and_line(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from agent.cli import app

    rules = tmp_path / "rules.yaml"
    rules.write_text(
        "rules:\n"
        "  - id: drop\n"
        "    scope: account\n"
        '    when: delta(account.health_status, "30d") < -15\n'
        "    message: x\n"
    )
    result = CliRunner().invoke(app, ["rules", "validate", str(rules)])
    assert result.exit_code != 0
    assert f"{rules}:4:" in result.output
    assert "delta() needs a number" in result.output


def test_rules_test_shows_before_and_after(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from agent.cli import app

    monkeypatch.chdir(tmp_path)
    for name in ("AX_CONFIG", "AX_SECRETS_FILE", "AX_STATE_URL", "AX_CRM"):
        monkeypatch.delenv(name, raising=False)
    crm = tmp_path / "crm"
    crm.mkdir()
    (crm / "accounts.csv").write_text(
        "id,name,domain,revenue\nA,Acme,a.com,1000\nB,Beta,b.com,500\n"
    )
    (crm / "contacts.csv").write_text(
        "id,account_id,email,name,title\n"
        "a1,A,ceo@a.com,Ann,CEO\na2,A,dev@a.com,Dev,Engineer\n"
        "b1,B,cfo@b.com,Bo,CFO\nb2,B,coo@b.com,Cy,COO\n"
    )
    rows = [(r.response_id, r.email, r.score, r.submitted_at.isoformat()) for r in _answers(True)]
    (crm / "responses.csv").write_text(
        "response_id,email,score,submitted_at\n"
        + "".join(f"{a},{b},{c},{d}\n" for a, b, c, d in rows)
    )
    env = {"AX_STATE_URL": f"sqlite:///{tmp_path / 'state.db'}"}
    runner = CliRunner()
    args = ["history", "backfill", "--crm-dir", str(crm), "--since", T0.isoformat()]
    backfill = runner.invoke(app, [*args, "--until", T1.isoformat(), "--every", "7d"], env=env)
    assert backfill.exit_code == 0, backfill.output
    tested = runner.invoke(
        app,
        [
            "rules",
            "test",
            "--crm-dir",
            str(crm),
            "--as-of",
            T2.isoformat(),
            "--rules",
            str(REPO / "rules"),
        ],
        env=env,
    )
    assert tested.exit_code == 0, tested.output
    out = tested.stdout
    assert "Acme: health 96 → 36 in 30 days (-60.0)" in out
    assert "  account.health_score, 30d: 95.8 → 35.8" in out
    assert "  account.health_status: healthy → at_risk" in out
    assert "  response.score: 10 → 7" in out


class _Counted:
    """The stored history, noting which accounts each read returned."""

    def __init__(self, real: StoredHistory) -> None:
        self.real = real
        self.read: list[list[str]] = []
        self.keys: list[list[str] | None] = []
        self.points: list[tuple[datetime, bool]] = []

    def accounts_at(
        self,
        at: datetime,
        *,
        strict: bool = False,
        ids: Sequence[str] | None = None,
        keys: Collection[str] | None = None,
    ) -> Mapping[str, HistoryRow]:
        found = self.real.accounts_at(at, strict=strict, ids=ids, keys=keys)
        self.keys.append(None if keys is None else sorted(keys))
        self.points.append((at, strict))
        self.read.append(sorted(found))
        return found

    def portfolio_points(self, until: datetime) -> Sequence[tuple[datetime, Mapping[str, Any]]]:
        return self.real.portfolio_points(until)


def test_a_new_answer_reads_the_history_of_its_own_account_only(sqlite_url: str) -> None:
    """The answers path evaluates one account: reading every account's history row (all
    50,000 decoded) for it took seconds per detractor."""
    store = StateStore.open(sqlite_url)
    try:
        for at, late in ((T1, False), (T2, True)):
            document, _ = compute_with_matches(_accounts(late), CONTACTS, _answers(late), as_of=at)
            HistoryRepo(store).record("files", document)
        mine = next(m for m in document.accounts if m.id == "A")
        counted = _Counted(StoredHistory(store, "files"))
        inputs = account_inputs(
            document,
            {"A": (_accounts(True)[0], mine)},
            [],
            NOW + timedelta(hours=1),
            history=counted,
        )
        assert inputs.history is not None
        inputs.history.expect(["nps", "at_risk"])  # as an evaluation of such rules does
        full = RuleHistory(StoredHistory(store, "files"))
        for key in ("nps", "at_risk"):
            current = getattr(mine, key)
            assert inputs.history.account_changed(NOW, "A", key, current) == (
                full.account_changed(NOW, "A", key, current)
            )
    finally:
        store.close()
    assert counted.read == [["A"]]  # one read, of account A's rows alone


def test_an_evaluation_keeps_only_the_figures_its_rules_read(
    sqlite_url: str, shipped: RuleSet
) -> None:
    """Each account's history row holds two dozen figures; the shipped rules read three
    (their conditions and texts). Decoded and kept whole for 50,000 accounts, the rows
    in force held about 190 MB while the rules ran. An evaluation reads each point in
    time once, keeping those figures only, and the texts come out the same."""
    store = StateStore.open(sqlite_url)
    try:
        _cycle(store, shipped, T0, late=False)
        _cycle(store, shipped, T1, late=False)
        document, matches = compute_with_matches(
            _accounts(True), CONTACTS, _answers(True), as_of=T2
        )
        HistoryRepo(store).record("files", document)
        counted = _Counted(StoredHistory(store, "files"))
        inputs = build_inputs(document, _accounts(True), response_facts(matches), history=counted)
        evaluation = evaluate(shipped.rules, inputs)
        texts = _texts(evaluation)
    finally:
        store.close()
    read = sorted({k for r in shipped.rules for k in r.history_keys})
    assert read == ["health_score", "health_status", "nps"]
    assert counted.keys == [read] * len(counted.points)
    assert len(counted.points) == len(set(counted.points)) == 2  # now (strict), 30 days ago
    assert texts["health-dropped-30d"] == [
        "Account A: health 96 → 36 in 30 days (-60.0); NPS 100.0 → -100.0",
        "Account B: health 92 → 62 in 30 days (-30.0); NPS 100.0 → 0.0",
    ]


def test_a_figure_not_expected_reads_its_point_again_with_it(sqlite_url: str) -> None:
    store = StateStore.open(sqlite_url)
    try:
        for at, late in ((T1, False), (T2, True)):
            document, _ = compute_with_matches(_accounts(late), CONTACTS, _answers(late), as_of=at)
            HistoryRepo(store).record("files", document)
        counted = _Counted(StoredHistory(store, "files"))
        history = RuleHistory(counted)
        history.expect(["nps"])
        full = StoredHistory(store, "files").accounts_at(NOW, strict=True)
        kept = StoredHistory(store, "files").accounts_at(NOW, strict=True, keys={"nps"})
        assert kept["A"].figures == {"nps": full["A"].figures["nps"]}  # the one figure asked
        assert kept["A"].since == full["A"].since
        assert history.account(NOW, "A", "nps", "num", None) == full["A"].figures["nps"]
        assert history.account(NOW, "B", "nps", "num", None) == full["B"].figures["nps"]
        assert (
            history.account(NOW, "A", "health_score", "num", None)
            == (full["A"].figures["health_score"])
        )
    finally:
        store.close()
    assert counted.keys == [["nps"], ["health_score", "nps"]]
    assert counted.points == [(NOW, True), (NOW, True)]
