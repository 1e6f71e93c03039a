"""One alerting cycle: reload rules -> evaluate -> decide -> record -> deliver.

The stages are separate (as in Alertmanager's notify pipeline): evaluation and the
decision are pure; recording writes the outbox and the state in one transaction;
delivery sends what is pending and marks it sent only once the vendor answered.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

import structlog
from sqlalchemy import Connection

from agent.alerts.compose import (
    alert_content,
    closed_content,
    digest_content,
    escalation_content,
    group_for_digest,
)
from agent.alerts.decide import Decision, EscalationCheck, decide, decide_escalation, muting_silence
from agent.alerts.deliver import DeliveryReport, Notifier, deliver
from agent.alerts.model import AlertContent, AlertState, Destination, Silence
from agent.alerts.repo import AlertRepo, OutboxRecord
from agent.alerts.routing import Routing
from agent.core.document import MetricsDocument
from agent.core.durations import format_duration
from agent.core.horizon import TICK, earliest
from agent.core.redaction import redact
from agent.rules.evaluate import evaluate, response_subject
from agent.rules.facts import AccountFacts, ResponseFacts, RuleInputs
from agent.rules.loader import CompiledRule, RuleLoadError
from agent.rules.registry import RuleRegistry

__all__ = ["AlertPipeline", "CycleReport", "admin_rules_alert", "close_loop"]

_log = structlog.get_logger(__name__)
_ADMIN_TEXT_LIMIT = 2500
#: How long after ``max_age`` a response alert's loop is still watched for closing.
_TRACKED = timedelta(days=30)


@dataclass(slots=True)
class CycleReport:
    rules: int = 0
    matches: int = 0
    decisions: Counter[str] = field(default_factory=Counter)
    recorded: int = 0
    digests: int = 0
    rules_error: str | None = None
    evaluation_errors: dict[str, int] = field(default_factory=dict)
    delivery: DeliveryReport | None = None
    #: Every decision of the cycle (previews show what was held back, and why).
    outcomes: list[Decision] = field(default_factory=list)
    #: The fingerprint of the rule files the cycle evaluated (another thread may load
    #: newer ones meanwhile: the registry's ``seen`` is not what this cycle decided over).
    rules_fingerprint: str = ""

    def counts_only(self) -> CycleReport:
        """The same report without its decisions: what a caller keeps after the run.

        Each decision's match holds the evaluation's history (every account's rows in
        force) and, through it, every matched response of the computation it read: a
        report kept from one run to the next would hold a million answers at 50,000
        accounts beside the next computation's."""
        return replace(self, outcomes=[])


def admin_rules_alert(error: RuleLoadError, channel: str, now: datetime) -> OutboxRecord:
    """The admin alert for an invalid rule change; one per distinct set of errors."""
    text = redact("\n".join(str(e) for e in error.errors))
    digest = hashlib.sha256(text.encode()).hexdigest()[:16]
    content = AlertContent(
        kind="admin",
        alert_id=f"admin:rules:{digest}",
        rule_id="admin",
        title="Rule files are invalid: the last valid rules keep running",
        text=text[:_ADMIN_TEXT_LIMIT],
        severity="critical",
        reason=f"{len(error.errors)} error(s); fix them and the next cycle picks the change up",
    )
    return OutboxRecord(content, "admin", "rules", Destination(channel=channel), now)


def close_loop(
    repo: AlertRepo,
    alert_id: str,
    closed_by: str,
    now: datetime,
    sla: timedelta,
    *,
    conn: Connection | None = None,
) -> OutboxRecord | None:
    """Close the loop of an alert (a Slack button); queue the update of its message.

    With ``conn``, both happen inside that open transaction (its owner commits)."""
    original_id = alert_id.removeprefix("esc:")
    state = repo.close(original_id, closed_by, now, conn=conn)
    original = repo.get(original_id, conn=conn)
    if state is None or original is None:
        return None
    record = OutboxRecord(
        content=closed_content(original.content, now, closed_by, sla),
        scope="response",
        subject=state.subject,
        destination=original.destination,
        created_at=now,
    )
    repo.record([record], [], conn=conn)
    return record


class AlertPipeline:
    def __init__(
        self,
        repo: AlertRepo,
        registry: RuleRegistry,
        routing: Routing,
        notifier: Notifier,
        *,
        admin_channel: str,
        digest_threshold: int = 10,
        loop_sla: timedelta = timedelta(hours=48),
        crm_link: Callable[[str], str | None] | None = None,
    ) -> None:
        self.repo = repo
        self.registry = registry
        self.routing = routing
        self.notifier = notifier
        self.admin_channel = admin_channel
        self.digest_threshold = digest_threshold
        self.loop_sla = loop_sla
        self.crm_link = crm_link
        #: When set (the running agent's delivery worker), recorded alerts are handed
        #: to it instead of being delivered in the cycle's own thread.
        self.handoff: Callable[[], None] | None = None
        #: The cycle (``run``, ``escalate``) and the answers worker (``respond``) decide
        #: on their own threads. A cycle deciding over states the worker changed since
        #: it read them would alert an account condition twice (its alert ids carry the
        #: instant). The cycle decides without a lock, for seconds at 50,000 accounts;
        #: then, under this lock, it drops what it decided for a subject the worker
        #: recorded meanwhile (the next run decides it over the new state) and records.
        #: The worker reads, decides and records under it: a few subjects.
        self._deciding = threading.Lock()
        self._answered = _Answered()

    def run(
        self, inputs: RuleInputs, now: datetime, *, send: bool = True, escalate: bool = True
    ) -> CycleReport:
        """One alerting cycle; ``escalate=False`` leaves escalations to ``escalate()``."""
        report = CycleReport()
        records: list[OutboxRecord] = []
        reload = self.registry.refresh()
        if reload.error is not None:
            report.rules_error = str(reload.error)
            records.append(admin_rules_alert(reload.error, self.admin_channel, now))
        rules = _alerting(reload.rules.enabled())
        report.rules, report.rules_fingerprint = len(rules), reload.rules.fingerprint
        evaluation = evaluate(rules, inputs)
        report.matches = len(evaluation.matches)
        report.evaluation_errors = dict(evaluation.errors)
        mark = self._answered.mark()
        states = self.repo.states(r.id for r in rules)
        silences = self.repo.silences(now)
        decisions = decide(rules, evaluation, states, silences, now)
        report.outcomes = decisions
        alerts, new_states = self._plan(decisions, now, inputs.document)
        esc_records, esc_states = (
            self._escalations(rules, states, inputs, silences, now) if escalate else ([], [])
        )
        report.decisions.update(d.action for d in decisions)
        grouped = self._group(alerts, now, report)
        with self._deciding:
            taken = self._answered.since(mark)
            if any(_key(r) in taken for r, _ in alerts):  # rare: grouped again without
                report.digests = 0
                grouped = self._group([a for a in alerts if _key(a[0]) not in taken], now, report)
            records.extend(grouped)
            records.extend(r for r in esc_records if _key(r) not in taken)
            changed = [s for s in (*new_states, *esc_states) if (s.rule_id, s.subject) not in taken]
            report.recorded = self.repo.record(records, changed)
        if send:
            report.delivery = self._send(now)
        _log.info(
            "alert_cycle",
            rules=report.rules,
            matches=report.matches,
            decisions=dict(report.decisions),
            recorded=report.recorded,
            digests=report.digests,
            rules_error=report.rules_error is not None,
        )
        return report

    def respond(self, inputs: RuleInputs, now: datetime, *, send: bool = True) -> CycleReport:
        """The alerts of new answers alone: the response and account rules over the
        subjects in ``inputs`` (the answers and their accounts), decided against those
        subjects' states only; every other subject waits for the next full run.

        It may run on another thread than ``run`` (both record through the repository,
        one at a time; alert ids are keyed, so an alert both decide is stored once). An
        invalid rule change it is the first to see is reported here, as ``run`` does."""
        report = CycleReport()
        records: list[OutboxRecord] = []
        reload = self.registry.refresh()
        if reload.error is not None:
            report.rules_error = str(reload.error)
            records.append(admin_rules_alert(reload.error, self.admin_channel, now))
        rules = [
            r for r in _alerting(reload.rules.enabled()) if r.rule.scope in ("response", "account")
        ]
        report.rules = len(rules)
        evaluation = evaluate(rules, inputs)
        report.matches = len(evaluation.matches)
        report.evaluation_errors = dict(evaluation.errors)
        subjects = {response_subject(f) for f in inputs.responses} | set(inputs.accounts)
        with self._deciding:
            states = self.repo.states_of((r.id for r in rules), subjects)
            decisions = decide(rules, evaluation, states, self.repo.silences(now), now)
            alerts, new_states = self._plan(decisions, now, inputs.document)
            records.extend(self._group(alerts, now, report))
            report.decisions.update(d.action for d in decisions)
            report.recorded = self.repo.record(records, new_states)
            self._answered.add((s.rule_id, s.subject) for s in new_states)
        if send:
            report.delivery = self._send(now)
        _log.info(
            "answer_alerts",
            rules=report.rules,
            matches=report.matches,
            decisions=dict(report.decisions),
            recorded=report.recorded,
        )
        return report

    def horizon(self, as_of: datetime) -> datetime | None:
        """The first instant after ``as_of`` at which the alerting decisions can differ
        with the same inputs (figures, rules, alert states, silences); None: never.

        A rule reading the clock (``hours_since``, ``since``, ``previous(x, "30d")``) in
        its condition moves with time itself: the decisions then hold for ``as_of`` only.
        """
        rules = self.registry.refresh().rules.enabled()
        for compiled in rules:
            unless = compiled.unless
            if compiled.when.reads_clock or (unless is not None and unless.reads_clock):
                return as_of + TICK
            if compiled.rule.scope == "response" and compiled.rule.inhibits:
                return as_of + TICK  # its matches end with max_age, and their inhibitions
        by_id = {r.id: r for r in _alerting(rules)}
        found: datetime | None = None
        for (rule_id, _), state in self.repo.states(by_id).items():
            rule = by_id[rule_id].rule
            due: datetime | None = None
            if state.firing and state.last_alert_at is not None:
                if rule.realert is not None and rule.scope != "response":
                    due = state.last_alert_at + rule.realert
                escalate = rule.escalate
                if (
                    escalate is not None
                    and state.last_alert_id is not None
                    and state.closed_at is None
                    and state.escalated_at is None
                ):
                    due = earliest(due, state.since + escalate.after)
            if due is not None and due > as_of:
                found = earliest(found, due)
            elif due is not None:
                return as_of + TICK  # due already (a skipped silence or inhibition holds it)
        for silence in self.repo.silences(as_of):
            found = earliest(found, silence.expires_at)
        return found

    def _send(self, now: datetime) -> DeliveryReport | None:
        if self.handoff is None:
            return deliver(self.repo, self.notifier, now)
        self.handoff()
        return None

    def escalate(self, inputs: RuleInputs, now: datetime, *, send: bool = True) -> CycleReport:
        """Only the escalation checks (and closing of loops) on their own cadence."""
        report = CycleReport()
        loaded = self.registry.refresh().rules
        rules = _alerting(loaded.enabled())
        report.rules, report.rules_fingerprint = len(rules), loaded.fingerprint
        mark = self._answered.mark()
        states = self.repo.states(r.id for r in rules)
        silences = self.repo.silences(now)
        records, changed = self._escalations(rules, states, inputs, silences, now)
        with self._deciding:
            taken = self._answered.since(mark)
            records = [r for r in records if _key(r) not in taken]
            changed = [s for s in changed if (s.rule_id, s.subject) not in taken]
            report.decisions.update(r.content.kind for r in records)
            report.recorded = self.repo.record(records, changed)
        if send:
            report.delivery = self._send(now)
        _log.info("escalation_cycle", rules=report.rules, recorded=report.recorded)
        return report

    def _plan(
        self, decisions: Sequence[Decision], now: datetime, document: MetricsDocument
    ) -> tuple[list[tuple[OutboxRecord, Destination]], list[AlertState]]:
        alerts: list[tuple[OutboxRecord, Destination]] = []
        states: list[AlertState] = []
        # One text per rule and reason: a first cycle at 50,000 accounts makes tens of
        # thousands of alerts of a few rules, each holding its rule's condition.
        reasons: dict[tuple[str, str], str] = {}
        for decision in decisions:
            if decision.action == "notify" and decision.match is not None:
                match = decision.match
                notify = match.rule.rule.notify
                why = (match.rule.id, decision.reason)
                reason = reasons.get(why)
                if reason is None:
                    reason = reasons[why] = _reason(match.rule, decision.reason)
                content = alert_content(
                    match,
                    now,
                    reason=reason,
                    mention_email=self.routing.mention(notify, match.account),
                    crm_link=self.crm_link,
                    document=document,
                )
                destination = self.routing.destination(notify, match.account)
                scope = match.rule.rule.scope
                record = OutboxRecord(content, scope, match.subject, destination, now)
                alerts.append((record, destination))
                base = decision.state or AlertState(match.rule.id, match.subject, True, now)
                states.append(replace(base, last_alert_at=now, last_alert_id=content.alert_id))
            elif decision.state is not None:
                states.append(decision.state)
        return alerts, states

    def _group(
        self, alerts: list[tuple[OutboxRecord, Destination]], now: datetime, report: CycleReport
    ) -> list[OutboxRecord]:
        by_id = {r.content.alert_id: r for r, _ in alerts}
        single, digests = group_for_digest(
            [(r.content, d) for r, d in alerts], self.digest_threshold
        )
        out = [by_id[c.alert_id] for c, _ in single]
        for key, members in digests.items():
            first = by_id[members[0].alert_id]
            digest = digest_content(key, members, now)
            out.extend(replace(by_id[m.alert_id], status="digested") for m in members)
            out.append(
                OutboxRecord(
                    digest,
                    "digest",
                    key,
                    first.destination,
                    now,
                    members=tuple(m.alert_id for m in members),
                )
            )
            report.digests += 1
        return out

    def _escalations(
        self,
        rules: Sequence[CompiledRule],
        states: dict[tuple[str, str], AlertState],
        inputs: RuleInputs,
        silences: Sequence[Silence],
        now: datetime,
    ) -> tuple[list[OutboxRecord], list[AlertState]]:
        watched = [r for r in rules if r.rule.escalate is not None or r.rule.scope == "response"]
        candidates = _open_states(watched, states, now)
        if not candidates:
            return [], []
        responses = _responses_for({s.subject for _, s in candidates}, inputs.responses)
        records: list[OutboxRecord] = []
        changed: list[AlertState] = []
        for rule, state in candidates:
            check = self._check(
                rule, state, responses=responses, inputs=inputs, silences=silences, now=now
            )
            decision = decide_escalation(rule, check, now)
            record = self._escalation_record(rule, decision, state, now)
            if decision.state is not None:
                changed.append(decision.state)
            if record is not None:
                records.append(record)
        return records, changed

    def _check(
        self,
        rule: CompiledRule,
        state: AlertState,
        *,
        responses: dict[str, ResponseFacts],
        inputs: RuleInputs,
        silences: Sequence[Silence],
        now: datetime,
    ) -> EscalationCheck:
        facts = responses.get(state.subject) if rule.rule.scope == "response" else None
        account: AccountFacts | None
        if facts is not None:
            account = inputs.accounts.get(facts.account.id)
        else:
            account = inputs.accounts.get(state.subject)
        unless: bool | None = None
        if rule.unless is not None and (facts is not None or rule.rule.scope == "account"):
            unless = bool(rule.unless.fn(facts, account, inputs.portfolio, now))
        account_id = account.metrics.id if account else None
        return EscalationCheck(
            state=state,
            closed_at=facts.closed_at if facts is not None else None,
            unless=unless,
            silenced_by=muting_silence(silences, rule.id, account_id, now),
        )

    def _escalation_record(
        self, rule: CompiledRule, decision: Decision, state: AlertState, now: datetime
    ) -> OutboxRecord | None:
        if decision.action not in ("escalate", "close") or state.last_alert_id is None:
            return None
        original = self.repo.get(state.last_alert_id)
        if original is None:
            return None
        if decision.action == "close" and decision.state is not None:
            closed_at = decision.state.closed_at or now
            content = closed_content(original.content, closed_at, "survey or CRM", self.loop_sla)
            return OutboxRecord(content, rule.rule.scope, state.subject, original.destination, now)
        escalate = rule.rule.escalate
        if escalate is None:
            return None
        content = escalation_content(original.content, escalate.after, now)
        destination = Destination(channel=self.routing.channel(escalate.to))
        return OutboxRecord(content, rule.rule.scope, state.subject, destination, now)


class _Answered:
    """The (rule, subject) states the answers worker recorded, numbered in order, so
    that a cycle can tell which of them changed after it read the states.

    Read and written under the pipeline's ``_deciding`` lock, but for ``mark``. One
    cycle decides at a time (the scheduler's thread): recording drops what is older
    than its mark."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0
        self._at: dict[tuple[str, str], int] = {}

    def mark(self) -> int:
        """Where the answers worker's records stand, before the states are read."""
        with self._lock:
            return self._count

    def add(self, keys: Iterable[tuple[str, str]]) -> None:
        with self._lock:
            self._count += 1
            for key in keys:
                self._at[key] = self._count

    def since(self, mark: int) -> frozenset[tuple[str, str]]:
        """What was recorded after ``mark``; what came before is forgotten."""
        with self._lock:
            taken = frozenset(k for k, at in self._at.items() if at > mark)
            self._at = {k: self._at[k] for k in taken}
            return taken


def _key(record: OutboxRecord) -> tuple[str, str]:
    return record.content.rule_id, record.subject


def _alerting(rules: Sequence[CompiledRule]) -> tuple[CompiledRule, ...]:
    """The rules that send Slack messages (``notify.slack: false`` rules only make tasks)."""
    return tuple(r for r in rules if r.rule.notify.slack)


def _reason(rule: CompiledRule, decision_reason: str) -> str:
    realert = rule.rule.realert
    why = {
        "new_response": "new response",
        "became_true": "condition became true",
        "realert_due": f"still true after {format_duration(realert)}" if realert else "still true",
        "no_longer_held": "silence or inhibition ended, still true",
    }.get(decision_reason, decision_reason)
    return f"{rule.id}: {rule.rule.when.strip()} ({why})"


def _open_states(
    rules: Sequence[CompiledRule], states: dict[tuple[str, str], AlertState], now: datetime
) -> list[tuple[CompiledRule, AlertState]]:
    """Alerted, not closed, not escalated, and recent enough to still matter."""
    out = []
    by_id = {r.id: r for r in rules}
    for (rule_id, _), state in states.items():
        rule = by_id.get(rule_id)
        if rule is None or state.last_alert_id is None or state.closed_at is not None:
            continue
        if rule.rule.scope == "response" and state.since < now - rule.rule.max_age - _TRACKED:
            continue  # a loop closed this late is no longer followed on the message
        out.append((rule, state))
    return out


def _responses_for(
    subjects: set[str], responses: Sequence[ResponseFacts]
) -> dict[str, ResponseFacts]:
    out: dict[str, ResponseFacts] = {}
    for facts in responses:
        subject = response_subject(facts)
        if subject in subjects:
            out[subject] = facts
    return out
