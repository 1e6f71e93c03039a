"""A notifier that prints alerts: ``ax-agent demo``, ``--dry-run`` and ``rules test``."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC

from agent.alerts.model import AlertContent, OutboxAlert, Sent
from agent.core.formatting import format_value

__all__ = ["ConsoleNotifier", "render_text"]


def render_text(content: AlertContent, destination: str = "") -> str:
    """The same content a Slack message carries, as plain lines."""
    head = f"[{content.severity.upper()}] {content.title}"
    lines = [f"{head}  -> {destination}" if destination else head, f"  {content.text}"]
    if content.account is not None:
        a = content.account
        lines.append(
            f"  account: {a.name} ({a.id}) revenue {format_value(a.revenue, 'money')}"
            f" health {a.health_status} ({format_value(a.health_score, 'int')})"
            f" NPS {format_value(a.nps)}"
        )
        if a.crm_url:
            lines.append(f"  crm: {a.crm_url}")
    if content.response is not None:
        r = content.response
        who = r.contact_name or r.contact_email or "unknown contact"
        lines.append(f"  response: {r.score} ({r.category}) from {who}, tier {r.tier}")
        if r.comment:
            lines.append(f"  comment: {r.comment}")
    if content.mention_email:
        lines.append(f"  owner: {content.mention_email}")
    lines.extend(_attachment_lines(content))
    if content.reason:
        lines.append(f"  why: {content.reason}")
    lines.extend(f"  - [{item.severity}] {item.title}: {item.text}" for item in content.items)
    if content.more:
        lines.append(f"  ... and {content.more} more")
    if content.closure is not None:
        c = content.closure
        sla = "within" if c.within_sla else "outside"
        lines.append(f"  loop closed by {c.closed_by} at {c.closed_at:%Y-%m-%d %H:%M} ({sla} SLA)")
    return "\n".join(lines)


def _attachment_lines(content: AlertContent) -> list[str]:
    attachment = content.attachment
    if attachment is None:
        return []
    lines = [f"  figures as of {attachment.as_of.astimezone(UTC):%Y-%m-%d %H:%M} UTC:"]
    lines.extend(f"    {h.label}: {h.text} ({h.note})" for h in attachment.headlines)
    drivers = len(attachment.drivers)
    lines.append(
        f"  chart: the driver chart (by answers and by revenue, {drivers} "
        f"driver{'' if drivers == 1 else 's'}) would be attached in Slack, in the message's thread"
    )
    return lines


class ConsoleNotifier:
    """Prints instead of sending; message ids are a counter."""

    def __init__(self, echo: Callable[[str], None] = print) -> None:
        self._echo = echo
        self._count = 0

    def resolve(self, alert: OutboxAlert) -> str:
        owner = alert.destination.owner_email
        return f"@{owner}" if owner else alert.destination.channel

    def send(self, alert: OutboxAlert, channel_id: str) -> Sent:
        self._count += 1
        self._echo(render_text(alert.content, channel_id))
        return Sent(channel=channel_id, ts=f"console.{self._count}", printed=True)

    def find_sent(self, alert: OutboxAlert, channel_id: str) -> Sent | None:
        return None

    def update(self, alert: OutboxAlert, target: Sent) -> Sent:
        self._echo(render_text(alert.content, f"(update of {target.ts})"))
        return target

    def attach(self, alert: OutboxAlert, message: Sent) -> None:
        """Nothing to draw on a console: ``send`` already said what would be attached."""

    def find_attachment(self, alert: OutboxAlert, message: Sent) -> bool:
        return False
