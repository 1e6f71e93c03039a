"""CallBudget: a run's share of a daily API allowance, from the vendor's own reports."""

from __future__ import annotations

import pytest

from connectors.common.budget import BudgetExhaustedError, CallBudget, Usage


def test_no_report_yet_means_no_limit() -> None:
    budget = CallBudget("vendor")
    for _ in range(1000):
        budget.check()
        budget.spend()


def test_run_allowance_is_a_share_of_what_was_left_when_the_run_began() -> None:
    budget = CallBudget("vendor", run_share=0.25, max_used_share=1.0)
    budget.spend()
    budget.observe(Usage(used=601, limit=1000))  # includes this run's first call
    assert budget.allowance == 100  # 25 % of the 400 left before the run
    for _ in range(99):
        budget.check()
        budget.spend()
    with pytest.raises(BudgetExhaustedError) as err:
        budget.check()
    assert err.value.reason == "run_share"


def test_later_reports_do_not_move_the_run_allowance() -> None:
    budget = CallBudget("vendor", run_share=0.5, max_used_share=1.0)
    budget.observe(Usage(used=0, limit=100))
    budget.observe(Usage(used=90, limit=100))  # other integrations were busy
    assert budget.allowance == 50


def test_org_share_stops_whatever_the_run_used() -> None:
    budget = CallBudget("vendor", run_share=1.0, max_used_share=0.8)
    budget.observe(Usage(used=799, limit=1000))
    budget.check()
    budget.observe(Usage(used=800, limit=1000))
    with pytest.raises(BudgetExhaustedError, match="800 of 1000") as err:
        budget.check()
    assert err.value.reason == "org_share"


def test_reset_starts_a_new_run() -> None:
    budget = CallBudget("vendor", run_share=0.01, max_used_share=1.0)
    budget.observe(Usage(used=0, limit=100))
    budget.spend()
    with pytest.raises(BudgetExhaustedError):
        budget.check()
    budget.reset()
    budget.check()
    assert (budget.calls, budget.allowance) == (0, None)


@pytest.mark.parametrize(("run", "org"), [(0, 0.5), (0.5, 0), (1.5, 0.5), (0.5, 2)])
def test_shares_must_be_fractions(run: float, org: float) -> None:
    with pytest.raises(ValueError, match="shares"):
        CallBudget("vendor", run_share=run, max_used_share=org)
