"""Evaluate a rule set over one cycle's facts: pure, no I/O, no state.

The result says which (rule, subject) pairs are true right now, with the rendered
message; deciding what to send (re-arming, realert, silences) is the next stage's job.
"""

from __future__ import annotations

from bisect import bisect_left
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import islice
from operator import le

from agent.core.document import PortfolioMetrics
from agent.rules.facts import AccountFacts, ResponseFacts, RuleInputs
from agent.rules.history import RuleHistory
from agent.rules.loader import CompiledRule

__all__ = ["PORTFOLIO_SUBJECT", "Evaluation", "Match", "evaluate", "response_subject"]

PORTFOLIO_SUBJECT = "portfolio"
_EVAL_ERRORS = (TypeError, ValueError, ArithmeticError, AttributeError, KeyError)


@dataclass(frozen=True, slots=True)
class Match:
    """One rule true for one subject: a response, an account or the portfolio."""

    rule: CompiledRule
    subject: str
    account_id: str | None
    #: When the situation began: a response's submission, else the cycle's as_of.
    started_at: datetime
    as_of: datetime
    portfolio: PortfolioMetrics
    response: ResponseFacts | None = None
    account: AccountFacts | None = None
    history: RuleHistory | None = None

    @property
    def text(self) -> str:
        """The rule's message for this subject (rendered on demand: most matches are
        already-alerted subjects whose text nobody reads)."""
        return self.rule.message.render(
            self.response, self.account, self.portfolio, self.as_of, self.history
        )


@dataclass(slots=True)
class Evaluation:
    as_of: datetime
    matches: list[Match] = field(default_factory=list)
    #: Subjects checked per rule (for the cycle summary).
    checked: Counter[str] = field(default_factory=Counter)
    #: Subjects whose evaluation failed per rule (a value the rule did not expect).
    errors: Counter[str] = field(default_factory=Counter)

    def by_rule(self, rule_id: str) -> list[Match]:
        return [m for m in self.matches if m.rule.id == rule_id]


def response_subject(facts: ResponseFacts) -> str:
    """Responses are unique per source; the subject says both."""
    response = facts.response
    return f"{response.source}/{response.response_id}" if response.source else response.response_id


def evaluate(rules: Iterable[CompiledRule], inputs: RuleInputs) -> Evaluation:
    """Every enabled rule over its scope's subjects."""
    result = Evaluation(as_of=inputs.as_of)
    rules = [r for r in rules if r.rule.enabled]
    if inputs.history is not None:
        inputs.history.expect(k for r in rules for k in r.history_keys)
    response_rules = [r for r in rules if r.rule.scope == "response"]
    if response_rules:
        pairs = _response_pairs(inputs)
        submitted = [facts.response.submitted_at for facts, _account in pairs]
        # the answers come in the store's order (oldest first) but from a caller that
        # orders them otherwise: a rule then reads every answer, as it always may
        in_order = all(map(le, submitted, islice(submitted, 1, None)))
        for rule in response_rules:
            # an answer older than the rule's max_age is never its subject: an ordered
            # list is read from the first answer inside it on (a million answers at
            # 50,000 accounts, a few percent of them in a fortnight)
            start = bisect_left(submitted, inputs.as_of - rule.rule.max_age) if in_order else 0
            _responses(rule, pairs, inputs, result, start)
    for rule in rules:
        if rule.rule.scope == "account":
            _accounts(rule, inputs, result)
        elif rule.rule.scope == "portfolio":
            _portfolio(rule, inputs, result)
    return result


def _response_pairs(inputs: RuleInputs) -> list[tuple[ResponseFacts, AccountFacts]]:
    """Counted responses with their account's facts."""
    get = inputs.accounts.get
    # one pass, no list of (facts, None) first: a million answers at 50,000 accounts
    return [
        (facts, account)
        for facts in inputs.responses
        if facts.counted and (account := get(facts.account.id)) is not None
    ]


def _responses(
    rule: CompiledRule,
    pairs: Sequence[tuple[ResponseFacts, AccountFacts]],
    inputs: RuleInputs,
    out: Evaluation,
    start: int = 0,
) -> None:
    """``rule`` over the answers of ``pairs`` from ``start`` on, each at most its
    ``max_age`` old."""
    cutoff = inputs.as_of - rule.rule.max_age
    fn, p, now, h = rule.when.fn, inputs.portfolio, inputs.as_of, inputs.history
    checked = 0
    for facts, account in islice(pairs, start, None):
        if facts.response.submitted_at < cutoff:
            continue
        checked += 1
        try:
            hit = fn(facts, account, p, now, h)
        except _EVAL_ERRORS:
            out.errors[rule.id] += 1
            continue
        if hit:
            out.matches.append(
                Match(
                    rule=rule,
                    subject=response_subject(facts),
                    account_id=account.metrics.id,
                    started_at=facts.response.submitted_at,
                    as_of=now,
                    portfolio=p,
                    response=facts,
                    account=account,
                    history=h,
                )
            )
    out.checked[rule.id] += checked


def _accounts(rule: CompiledRule, inputs: RuleInputs, out: Evaluation) -> None:
    fn, p, now, h = rule.when.fn, inputs.portfolio, inputs.as_of, inputs.history
    for account in inputs.accounts.values():
        try:
            hit = fn(None, account, p, now, h)
        except _EVAL_ERRORS:
            out.errors[rule.id] += 1
            continue
        if hit:
            out.matches.append(
                Match(
                    rule=rule,
                    subject=account.metrics.id,
                    account_id=account.metrics.id,
                    started_at=now,
                    as_of=now,
                    portfolio=p,
                    account=account,
                    history=h,
                )
            )
    out.checked[rule.id] += len(inputs.accounts)


def _portfolio(rule: CompiledRule, inputs: RuleInputs, out: Evaluation) -> None:
    p, now, h = inputs.portfolio, inputs.as_of, inputs.history
    out.checked[rule.id] += 1
    try:
        hit = rule.when.fn(None, None, p, now, h)
    except _EVAL_ERRORS:
        out.errors[rule.id] += 1
        return
    if hit:
        out.matches.append(Match(rule, PORTFOLIO_SUBJECT, None, now, now, p, history=h))
