"""What an alert says: content built from a rule match, and digests, escalations, updates.

Pure functions; alert ids are deterministic, so recording the same decision twice
adds one outbox row.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from agent.alerts.model import (
    AccountCard,
    AlertContent,
    ChartAttachment,
    Closure,
    Destination,
    DigestItem,
    HeadlineFigure,
    ResponseCard,
)
from agent.core.document import MetricsDocument
from agent.core.messages import Attachment
from agent.rules.evaluate import Match
from agent.rules.facts import AccountFacts, ResponseFacts

__all__ = [
    "DIGEST_ITEMS",
    "alert_content",
    "alert_id",
    "chart_attachment",
    "closed_content",
    "digest_content",
    "escalation_content",
    "group_for_digest",
]

#: Items a digest lists before "and N more" (Slack allows 50 blocks a message).
DIGEST_ITEMS = 40

CrmLink = Callable[[str], str | None]


def alert_id(match: Match, now: datetime) -> str:
    """Response alerts: one per rule and response. Others: one per rule, subject, time."""
    if match.rule.rule.scope == "response":
        return f"{match.rule.id}:{match.subject}"
    return f"{match.rule.id}:{match.subject}:{int(now.timestamp())}"


def alert_content(
    match: Match,
    now: datetime,
    *,
    reason: str,
    mention_email: str | None = None,
    crm_link: CrmLink | None = None,
    document: MetricsDocument | None = None,
) -> AlertContent:
    """The content of one match; with the cycle's ``document``, a rule's attachment too."""
    rule = match.rule.rule
    attachment = None
    if rule.attach is not None and document is not None:
        attachment = chart_attachment(rule.attach, document)
    return AlertContent(
        alert_id=alert_id(match, now),
        rule_id=rule.id,
        title=rule.description or rule.id,
        text=match.text,
        severity=rule.severity,
        reason=reason,
        account=_account_card(match.account, crm_link),
        response=_response_card(match.response),
        mention_email=mention_email,
        closable=match.response is not None and match.response.response.category == "detractor",
        attachment=attachment,
    )


def chart_attachment(kind: Attachment, document: MetricsDocument) -> ChartAttachment:
    """The report's headline figures and the driver figures the chart is drawn from."""
    # Only attachments need the report's figures (not its charts, which the delivery draws).
    from agent.report.figures import digest_figures  # noqa: PLC0415

    headlines = tuple(  # with the CRM task closed-loop rate, where there are tasks
        HeadlineFigure(key=h.key, label=h.label, value=h.value, text=h.text, note=h.note)
        for h in digest_figures(document)
    )
    return ChartAttachment(
        kind=kind, as_of=document.as_of, headlines=headlines, drivers=tuple(document.drivers)
    )


def escalation_content(original: AlertContent, after: timedelta, now: datetime) -> AlertContent:
    hours = round(after.total_seconds() / 3600)
    return original.model_copy(
        update={
            "kind": "escalation",
            "alert_id": f"esc:{original.alert_id}",
            "title": f"Escalation: {original.title}",
            "reason": f"loop not closed within {hours} h (as of {now:%Y-%m-%d %H:%M} UTC)",
            "refers_to": original.alert_id,
        }
    )


def closed_content(
    original: AlertContent, closed_at: datetime, closed_by: str, sla: timedelta
) -> AlertContent:
    """The original message with who closed the loop, when, and within the SLA or not."""
    started = original.response.submitted_at if original.response else closed_at
    closure = Closure(
        closed_at=closed_at, closed_by=closed_by, within_sla=closed_at - started <= sla
    )
    return original.model_copy(
        update={
            "kind": "update",
            "alert_id": f"upd:{original.alert_id}",
            "refers_to": original.alert_id,
            "closure": closure,
            "closable": False,
        }
    )


def group_for_digest(
    alerts: Sequence[tuple[AlertContent, Destination]], threshold: int
) -> tuple[list[tuple[AlertContent, Destination]], dict[str, list[AlertContent]]]:
    """Split into alerts sent one by one and, per destination over ``threshold``, digests.

    An alert with an attachment is always sent on its own: a digest lists texts only.
    """
    by_key: dict[str, list[tuple[AlertContent, Destination]]] = defaultdict(list)
    single: list[tuple[AlertContent, Destination]] = []
    for content, destination in alerts:
        if content.attachment is not None:
            single.append((content, destination))
        else:
            by_key[destination.key].append((content, destination))
    digests: dict[str, list[AlertContent]] = {}
    for key, group in by_key.items():
        if threshold > 0 and len(group) > threshold:
            digests[key] = [c for c, _ in group]
        else:
            single.extend(group)
    return single, digests


def digest_content(key: str, members: Sequence[AlertContent], now: datetime) -> AlertContent:
    shown = members[:DIGEST_ITEMS]
    return AlertContent(
        kind="digest",
        alert_id=f"digest:{key}:{int(now.timestamp())}",
        rule_id="digest",
        title=f"{len(members)} new alerts",
        text=f"{len(members)} alerts this cycle, grouped into one message.",
        severity=max((m.severity for m in members), key=_severity_rank, default="info"),
        items=tuple(DigestItem(title=m.title, text=m.text, severity=m.severity) for m in shown),
        more=len(members) - len(shown),
    )


def _severity_rank(severity: str) -> int:
    return {"info": 0, "warning": 1, "critical": 2}.get(severity, 0)


def _account_card(facts: AccountFacts | None, crm_link: CrmLink | None) -> AccountCard | None:
    if facts is None:
        return None
    m = facts.metrics
    return AccountCard(
        id=m.id,
        name=m.name,
        revenue=m.revenue,
        health_status=m.health_status,
        health_score=m.health_score,
        nps=m.nps,
        tiers_covered=tuple(m.tiers_covered),
        owner_email=facts.entity.owner_email,
        crm_url=crm_link(m.id) if crm_link else None,
    )


def _response_card(facts: ResponseFacts | None) -> ResponseCard | None:
    if facts is None:
        return None
    r = facts.response
    contact = facts.contact
    return ResponseCard(
        response_id=r.response_id,
        score=r.score,
        category=r.category,
        tier=facts.tier,
        contact_name=contact.name if contact and contact.name else None,
        contact_email=(contact.email if contact else None) or r.email,
        comment=r.comment,
        driver=r.driver,
        submitted_at=r.submitted_at,
    )
