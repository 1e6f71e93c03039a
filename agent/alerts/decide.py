"""The notify decision: pure functions from (match, state, silences, time) to a reason.

Nothing here reads a database or sends anything. Each decision names why it was
taken, so a cycle's log and ``rules test`` can explain every alert sent or held.

- response rules fire once per response (never twice for the same rule and response);
- account and portfolio rules fire when the condition becomes true, re-arm when it
  becomes false (not over figures older than the alert: an answer's alert is decided
  apart from the cycle), and repeat every ``realert`` while it stays true;
- a silenced or inhibited alert is held; it goes out once the silence ends if the
  condition still holds (as Alertmanager does);
- escalation: once, ``after`` the alert's start, unless the loop was closed or the
  rule's ``unless`` holds.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Literal

from agent.alerts.model import AlertState, Silence
from agent.rules.evaluate import Evaluation, Match
from agent.rules.loader import CompiledRule

__all__ = [
    "Action",
    "Decision",
    "EscalationCheck",
    "decide",
    "decide_escalation",
    "decide_subject",
    "inhibitions",
    "muting_silence",
]

Action = Literal["notify", "hold", "none", "rearm", "escalate", "close"]


@dataclass(frozen=True, slots=True)
class Decision:
    rule_id: str
    subject: str
    account_id: str | None
    action: Action
    reason: str
    #: The state to store (None: leave as it is).
    state: AlertState | None
    match: Match | None = None


def muting_silence(
    silences: Iterable[Silence], rule_id: str, account_id: str | None, now: datetime
) -> Silence | None:
    return next((s for s in silences if s.mutes(rule_id, account_id, now)), None)


def inhibitions(evaluation: Evaluation) -> dict[tuple[str, str | None], str]:
    """(inhibited rule, account) -> the firing rule that inhibits it."""
    out: dict[tuple[str, str | None], str] = {}
    for match in evaluation.matches:
        for target in match.rule.rule.inhibits:
            out.setdefault((target, match.account_id), match.rule.id)
    return out


def decide_subject(  # noqa: PLR0911  # a decision table reads best as early returns
    rule: CompiledRule,
    match: Match | None,
    state: AlertState | None,
    now: datetime,
    held_by: str | None = None,
) -> Decision:
    """One rule for one subject. ``held_by`` names a silence or inhibition, if any."""
    subject = match.subject if match else (state.subject if state else "")
    account_id = match.account_id if match else None

    def made(action: Action, reason: str, new: AlertState | None) -> Decision:
        return Decision(rule.id, subject, account_id, action, reason, new, match)

    if match is None:
        if state is not None and state.firing and rule.rule.scope != "response":
            if state.last_alert_at is not None and state.last_alert_at > now:
                # alerted after this decision's instant, from newer figures (the answers
                # worker's, while the cycle decided over older ones): theirs stands
                return made("none", "alerted_later", None)
            return made("rearm", "condition_false", replace(state, firing=False))
        return made("none", "condition_false", None)
    if state is None or not state.firing:
        fresh = AlertState(rule.id, subject, firing=True, since=match.started_at)
        if held_by is not None:
            return made("hold", held_by, fresh)
        reason = "new_response" if rule.rule.scope == "response" else "became_true"
        return made("notify", reason, fresh)
    if state.last_alert_at is None:
        if held_by is not None:
            return made("hold", held_by, None)
        return made("notify", "no_longer_held", state)
    if rule.rule.scope == "response":
        return made("none", "already_alerted", None)
    realert = rule.rule.realert
    if realert is not None and now - state.last_alert_at >= realert:
        if held_by is not None:
            return made("hold", held_by, None)
        return made("notify", "realert_due", state)
    return made("none", "still_firing", None)


def decide(
    rules: Sequence[CompiledRule],
    evaluation: Evaluation,
    states: Mapping[tuple[str, str], AlertState],
    silences: Sequence[Silence],
    now: datetime,
) -> list[Decision]:
    """Every match and every firing state of the given rules, decided."""
    inhibited = inhibitions(evaluation)
    by_id = {r.id: r for r in rules}
    decisions: list[Decision] = []
    seen: set[tuple[str, str]] = set()
    for match in evaluation.matches:
        if match.rule.id not in by_id:
            continue
        key = (match.rule.id, match.subject)
        seen.add(key)
        held = _held_by(match, inhibited, silences, now)
        decisions.append(decide_subject(match.rule, match, states.get(key), now, held))
    for key, state in states.items():
        rule = by_id.get(key[0])
        if rule is not None and key not in seen and state.firing:
            decision = decide_subject(rule, None, state, now)
            if decision.action != "none":
                decisions.append(decision)
    return decisions


def _held_by(
    match: Match,
    inhibited: Mapping[tuple[str, str | None], str],
    silences: Sequence[Silence],
    now: datetime,
) -> str | None:
    silence = muting_silence(silences, match.rule.id, match.account_id, now)
    if silence is not None:
        return f"silenced:{silence.id}"
    source = inhibited.get((match.rule.id, match.account_id))
    if source is not None and source != match.rule.id:
        return f"inhibited_by:{source}"
    return None


@dataclass(frozen=True, slots=True)
class EscalationCheck:
    """What is known now about an alerted subject whose rule escalates."""

    state: AlertState
    #: The loop's close time from the survey source or CRM, if closed.
    closed_at: datetime | None
    #: Whether the rule's ``unless`` expression holds now (None: no facts to check).
    unless: bool | None
    silenced_by: Silence | None = None


def decide_escalation(  # noqa: PLR0911  # a decision table reads best as early returns
    rule: CompiledRule, check: EscalationCheck, now: datetime
) -> Decision:
    """Escalate once when ``after`` has passed since the start and the loop is open."""
    state = check.state

    def made(action: Action, reason: str, new: AlertState | None) -> Decision:
        return Decision(rule.id, state.subject, None, action, reason, new)

    escalate = rule.rule.escalate
    if state.closed_at is not None:
        return made("none", "loop_closed", None)
    if check.closed_at is not None:
        closed = replace(state, closed_at=check.closed_at, closed_by="survey or CRM")
        return made("close", "loop_closed", closed)
    if escalate is None or state.escalated_at is not None or state.last_alert_at is None:
        return made("none", "not_escalating", None)
    if not state.firing:
        return made("none", "condition_false", None)
    if now < state.since + escalate.after:
        return made("none", "not_due", None)
    if check.unless:
        return made("none", "unless_holds", None)
    if check.silenced_by is not None:
        return made("hold", f"silenced:{check.silenced_by.id}", None)
    return made("escalate", "escalation_due", replace(state, escalated_at=now))
