"""The expression language: what compiles, what is refused, and how nulls behave."""

from __future__ import annotations

from datetime import timedelta

import pytest
from factories import AS_OF, account_metrics, response_facts
from factories import inputs as make_inputs

from agent.rules.expr import MAX_LENGTH, ExprError, compile_expr


def _run_account(text: str, **metrics: object) -> object:
    facts = make_inputs([account_metrics(**metrics)])
    compiled = compile_expr(text, "account")
    return compiled.fn(None, facts.accounts["A1"], facts.portfolio, facts.as_of)


def _run_response(text: str, **kwargs: object) -> object:
    facts = response_facts(**kwargs)  # type: ignore[arg-type]
    data = make_inputs(responses=[facts])
    compiled = compile_expr(text, "response")
    return compiled.fn(facts, data.accounts["A1"], data.portfolio, data.as_of)


@pytest.mark.parametrize(
    "text",
    [
        "account.__class__",
        "account.metrics",
        "account.name.__class__",
        "().__class__.__bases__",
        "[].__class__",
        "__import__('os')",
        "open('/etc/passwd')",
        "eval('1')",
        "getattr(account, 'x')",
        "(lambda: 1)()",
        "[x for x in account.domains]",
        "{'a': 1}",
        "account.name.upper()",
        "len.__self__",
        "f'{account}'",
        "account.revenue ** 1000000",
        "(x := 1)",
        "globals()",
        "account.attributes[account.name]",
        "account.domains[0]",
        "*account.domains",
        "r.response",
        "a.metrics.nps > 1",
        "__builtins__",
    ],
)
def test_escapes_and_unsupported_syntax_are_refused(text: str) -> None:
    with pytest.raises(ExprError):
        compile_expr(text, "account", expect=None)


def test_generated_code_has_no_builtins() -> None:
    compiled = compile_expr("len(account.name) > 0", "account")
    assert compiled.fn.__globals__["__builtins__"] == {}


def test_length_and_size_are_capped() -> None:
    with pytest.raises(ExprError, match="longer than"):
        compile_expr("1 == " + "1" * MAX_LENGTH, "portfolio")
    with pytest.raises(ExprError, match="parts"):
        compile_expr(" or ".join(["1==1"] * 120), "portfolio")
    with pytest.raises(ExprError):
        compile_expr("(" * 500 + "1" + ")" * 500 + " == 1", "portfolio")


def test_scope_limits_variables() -> None:
    with pytest.raises(ExprError, match="unknown name 'response'"):
        compile_expr("response.score < 7", "account")
    with pytest.raises(ExprError, match="unknown name 'account'"):
        compile_expr("account.nps < 0", "portfolio")


def test_type_errors_are_found_at_load() -> None:
    with pytest.raises(ExprError, match="cannot order"):
        compile_expr("account.name > 5", "account")
    with pytest.raises(ExprError, match="must give bool"):
        compile_expr("account.revenue", "account")
    with pytest.raises(ExprError, match="needs numbers"):
        compile_expr("account.name * 3 == 'x'", "account")
    with pytest.raises(ExprError, match="did you mean 'detractor'"):
        compile_expr('response.category == "detractors"', "response")
    with pytest.raises(ExprError, match="did you mean 'executive'"):
        compile_expr('contact.tier in ["executive", "exec"]', "response")


def test_error_positions_point_at_the_node() -> None:
    with pytest.raises(ExprError) as info:
        compile_expr("account.at_risk and account.nsp > 3", "account")
    assert (info.value.line, info.value.column) == (1, 21)
    with pytest.raises(ExprError) as info:
        compile_expr("account.at_risk and\n  account.nsp > 3", "account")
    assert (info.value.line, info.value.column) == (2, 3)


def test_values_and_operators() -> None:
    assert _run_account("account.revenue >= 100000 and account.health_status == 'neutral'")
    assert _run_account("account.revenue / 1000 == 100")
    assert _run_account("'frontline' in account.tiers_covered")
    assert _run_account("'executive' not in account.tiers_covered")
    assert _run_account("account.tier_nps.frontline == 0")
    assert _run_account("account.tier_nps['frontline'] == 0")
    assert _run_account("account.tier_nps.executive == null")
    assert _run_account("account.revenue_rank == 1 and account.cumulative_revenue_share == 1")
    assert _run_account("(1 if account.at_risk else 2) == 2")
    assert _run_account("max(account.nps, -5, null) == 0 and min(3, 4) == 3")
    assert _run_account("round(account.tier_coverage, 2) == 0.33")
    assert _run_account("-account.revenue < 0 and abs(-2) == 2 and 7 % 4 == 3")
    assert _run_account("0 < account.revenue < 1000000")


def test_null_comparisons_are_false_not_errors() -> None:
    assert _run_account("account.nps >= 50", nps=None) is False
    assert _run_account("account.nps < 50", nps=None) is False
    assert _run_account("account.nps == null", nps=None) is True
    assert _run_account("account.nps is None", nps=None) is True
    assert _run_account("account.nps / 0 > 1") is False
    assert _run_account("account.nps + 1 > 0", nps=None) is False
    assert _run_account('account.attributes["region"] == null') is True


def test_response_fields_and_time_functions() -> None:
    assert _run_response('response.category == "detractor" and contact.tier == "executive"')
    assert _run_response(
        "hours_since(response.submitted_at) > 47", submitted_at=AS_OF - timedelta(hours=48)
    )
    assert not _run_response("days_since(response.submitted_at) > 1")
    assert _run_response("response.loop_closed_at == null and contact.known")
    assert _run_response('"never" in lower(response.comment)')
    assert _run_response('"x" in response.comment', comment=None) is False
    assert _run_response("len(response.comment) == null", comment=None)
    assert _run_response('upper(contact.name) == "DANA EXEC"')


def test_inline_category_matches_the_models_thresholds() -> None:
    from agent.core.models import category_of

    for score in range(11):
        for category in ("promoter", "passive", "detractor"):
            hit = _run_response(f'response.category == "{category}"', score=score)
            assert hit == (category_of(score) == category), (score, category)


@pytest.mark.parametrize(
    ("text", "scope", "clock"),
    [
        ("account.nps < 0", "account", False),
        ("changed(account.health_status)", "account", False),
        ('previous(account.health_status) == "healthy"', "account", False),
        ('delta(account.health_score, "30d") <= -15', "account", True),
        ('previous(portfolio.nps, "7d") > 0', "portfolio", True),
        ("since(account.health_status) > 30", "account", True),
        ("held(portfolio.nps) > 3", "portfolio", True),
        ("hours_since(response.submitted_at) >= 48", "response", True),
        ("days_since(account.last_response_at) > 90", "account", True),
        ("delta(response.score) <= -3", "response", False),
    ],
)
def test_an_expression_says_whether_it_reads_the_clock(text: str, scope: str, clock: bool) -> None:
    assert compile_expr(text, scope).reads_clock is clock  # type: ignore[arg-type]
