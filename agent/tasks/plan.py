"""Which CRM tasks a cycle's rule matches call for: pure, no I/O.

A rule with a ``task:`` action asks for one task per subject (a response rule: one
per response, keyed like its alert, ``rule:source/response_id``), or with ``every``
at most one per account in that period (keyed ``rule:account:epoch``). The key is
the alert key the CRM record carries (``AX_Alert_Key__c``, ``ax_alert_key``), so a
task is never created twice, whatever crashes in between.
"""

from __future__ import annotations

from collections.abc import Callable, Container, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from agent.core.models import Tier
from agent.core.ports import TaskPriority
from agent.rules.evaluate import Match
from agent.rules.loader import CompiledRule, CompiledTask
from agent.rules.model import ACCOUNT_OWNER

__all__ = ["SUBJECT_LIMIT", "PlannedTask", "plan_lines", "plan_tasks", "task_key", "task_rules"]

#: Salesforce's ``Task.Subject`` holds 255 characters; HubSpot's subject is shown cut too.
SUBJECT_LIMIT = 255
_BODY_LIMIT = 32_000
_TIER_RANK: Mapping[Tier, int] = {"executive": 0, "management": 1, "frontline": 2, "unknown": 3}


@dataclass(frozen=True, slots=True)
class PlannedTask:
    """A task to record in the task outbox; the owner is resolved when it is sent."""

    key: str
    rule_id: str
    subject: str
    account_id: str
    contact_id: str | None
    response_source: str | None
    response_id: str | None
    owner_email: str | None
    fallback_email: str | None
    title: str
    body: str
    due_at: datetime
    priority: TaskPriority
    created_at: datetime


def task_rules(rules: Iterable[CompiledRule]) -> tuple[CompiledRule, ...]:
    """The enabled rules with a ``task:`` action."""
    return tuple(r for r in rules if r.task is not None and r.rule.enabled)


def task_key(match: Match, now: datetime) -> str:
    """The alert key: per response (or account) and rule; per period with ``every``."""
    task = match.rule.task
    if task is not None and task.action.every is not None:
        return f"{match.rule.id}:{match.account_id}:{int(now.timestamp())}"
    return f"{match.rule.id}:{match.subject}"


def plan_tasks(
    matches: Iterable[Match],
    *,
    known: Container[str],
    recent: Mapping[tuple[str, str], datetime],
    now: datetime,
    default_due: timedelta,
    fallback_owner: str | None,
) -> list[PlannedTask]:
    """New tasks for ``matches``: keys not ``known`` yet, periods not ``recent``-ly used.

    ``recent`` holds the newest task time per (rule, account) of rules with ``every``.
    Of several matches for one account and period, the most senior known contact
    wins (then the higher score, then the newer answer).
    """
    planned: list[PlannedTask] = []
    taken: set[tuple[str, str]] = set()
    for match in sorted(matches, key=_preference):
        task = match.rule.task
        if task is None or match.account is None:
            continue
        every = task.action.every
        if every is not None:
            slot = (match.rule.id, match.account.metrics.id)
            last = recent.get(slot)
            if slot in taken or (last is not None and now - last < every):
                continue
            taken.add(slot)
        key = task_key(match, now)
        if key in known:
            continue
        made = _planned(match, task, key, now, default_due=default_due, fallback=fallback_owner)
        planned.append(made)
    return planned


def plan_lines(planned: Sequence[PlannedTask], crm: str) -> Iterator[str]:
    """What would be created, for a person (``--dry-run``, ``rules test``)."""
    for task in planned:
        owner = task.owner_email or f"(no owner; fallback {task.fallback_email or 'CRM default'})"
        yield (
            f"task {task.key} in {crm}: {task.title!r} for {owner}, "
            f"due {task.due_at.astimezone(UTC):%Y-%m-%d %H:%M} UTC, {task.priority} priority"
        )
    yield f"{len(planned)} task(s) would be created in {crm}"


def _preference(match: Match) -> tuple[object, ...]:
    facts = match.response
    if facts is None:
        return (match.rule.id, match.subject)
    return (
        match.rule.id,
        facts.contact is None,
        _TIER_RANK.get(facts.tier, 3),
        -facts.response.score,
        -facts.response.submitted_at.timestamp(),
        match.subject,
    )


def _planned(
    match: Match,
    task: CompiledTask,
    key: str,
    now: datetime,
    *,
    default_due: timedelta,
    fallback: str | None,
) -> PlannedTask:
    action = task.action
    account = match.account
    assert account is not None  # checked by the caller
    facts = match.response
    render: Callable[..., str] = lambda t: t.render(facts, account, match.portfolio, match.as_of)  # noqa: E731
    start = now if action.due_from == "created" else match.started_at
    owner = account.entity.owner_email if action.owner == ACCOUNT_OWNER else action.owner
    return PlannedTask(
        key=key,
        rule_id=match.rule.id,
        subject=match.subject,
        account_id=account.metrics.id,
        contact_id=facts.contact.id if facts is not None and facts.contact is not None else None,
        response_source=facts.response.source if facts is not None else None,
        response_id=facts.response.response_id if facts is not None else None,
        owner_email=(owner or "").strip().lower() or None,
        fallback_email=(action.fallback_owner or fallback or "").strip().lower() or None,
        title=_one_line(render(task.subject))[:SUBJECT_LIMIT],
        body=render(task.body)[:_BODY_LIMIT],
        due_at=start + (action.due if action.due is not None else default_due),
        priority=action.priority,
        created_at=now,
    )


def _one_line(text: str) -> str:
    return " ".join(text.split())
