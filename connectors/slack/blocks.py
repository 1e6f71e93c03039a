"""Block Kit messages for alerts, built with slack_sdk's block models.

Slack rejects a message whose blocks exceed its limits (header 150 characters,
section text 3,000, a field 2,000, 10 fields, 50 blocks, button value 2,000 and
URL 3,000); so every text is cut to fit here, with an ellipsis: a long comment
is shortened, never the reason a message fails.
"""

from __future__ import annotations

import re
from datetime import UTC

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from agent.core.formatting import format_value
from agent.core.messages import AlertContent

__all__ = [
    "CLOSE_LOOP_ACTION",
    "LIMITS",
    "build_message",
    "escape",
    "fallback_text",
    "truncate",
]

CLOSE_LOOP_ACTION = "ax_close_loop"
_MENTION = re.compile(r"<@[A-Z0-9]+>")
LIMITS = {
    "header": 150,
    "section": 3000,
    "field": 2000,
    "context": 2000,
    "button_text": 75,
    "button_value": 2000,
    "url": 3000,
    "blocks": 50,
    "text": 3000,
}
_ICONS = {
    "critical": ":red_circle:",
    "warning": ":large_orange_circle:",
    "info": ":information_source:",
}


def truncate(text: str, limit: int) -> str:
    """At most ``limit`` characters; a cut text ends with an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def escape(text: str) -> str:
    """Slack's mrkdwn control characters, as its docs ask: & < >."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _md(text: str, limit: int) -> MarkdownTextObject:
    return MarkdownTextObject(text=truncate(text, limit))


def fallback_text(content: AlertContent, mention: str | None = None) -> str:
    """The notification text (and what screen readers and old clients show)."""
    text = f"{escape(content.title)}: {escape(content.text)}"
    if mention:
        text = f"{mention} {text}"
    return truncate(text, LIMITS["text"])


def build_message(content: AlertContent, mention: str | None = None) -> list[Block]:
    """The blocks of one alert, digest, escalation or updated (closed) alert."""
    icon = _ICONS.get(content.severity, "")
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=truncate(content.title, LIMITS["header"]))),
        SectionBlock(text=_md(_lead(content, icon, mention), LIMITS["section"])),
    ]
    fields = _fields(content)
    if fields:
        blocks.append(SectionBlock(fields=fields))
    if content.response is not None and content.response.comment:
        quoted = "> " + escape(content.response.comment).replace("\n", "\n> ")
        blocks.append(SectionBlock(text=_md(f"*Comment*\n{quoted}", LIMITS["section"])))
    blocks.extend(_digest_items(content))
    if content.attachment is not None:
        blocks.append(ContextBlock(elements=[_md(_attachment_note(content), LIMITS["context"])]))
    if content.closure is not None:
        blocks.append(SectionBlock(text=_md(_closure(content), LIMITS["section"])))
    if content.reason:
        blocks.append(
            ContextBlock(elements=[_md(f"Why: {escape(content.reason)}", LIMITS["context"])])
        )
    actions = _actions(content)
    if actions is not None:
        blocks.append(actions)
    return blocks[: LIMITS["blocks"]]


def _lead(content: AlertContent, icon: str, mention: str | None) -> str:
    text = f"{icon} {escape(content.text)}".strip()
    return f"{mention} {text}" if mention else text


def _fields(content: AlertContent) -> list[MarkdownTextObject]:
    pairs: list[tuple[str, str]] = []
    if content.account is not None:
        a = content.account
        pairs += [
            ("Account", a.name),
            ("Revenue", format_value(a.revenue, "money")),
            ("Health", f"{a.health_status} ({format_value(a.health_score, 'int')})"),
            ("NPS", format_value(a.nps)),
        ]
    if content.response is not None:
        r = content.response
        who = r.contact_name or r.contact_email or "unknown contact"
        pairs += [
            ("Score", f"{r.score} ({r.category})"),
            ("Tier", r.tier),
            ("Contact", who),
            ("Submitted", format_value(r.submitted_at)),
        ]
        if r.driver:
            pairs.append(("Driver", r.driver))
    if content.attachment is not None:
        pairs += [(h.label, f"{h.text} ({h.note})") for h in content.attachment.headlines]
    return [_md(f"*{k}*\n{escape(v)}", LIMITS["field"]) for k, v in pairs[:10]]


def _attachment_note(content: AlertContent) -> str:
    attachment = content.attachment
    if attachment is None:
        return ""
    when = attachment.as_of.astimezone(UTC)
    return (
        f"Figures as of {when:%Y-%m-%d %H:%M} UTC. The driver chart, by answers and by "
        "revenue, follows in this thread."
    )


def _digest_items(content: AlertContent) -> list[Block]:
    if not content.items:
        return []
    blocks: list[Block] = [DividerBlock()]
    blocks.extend(
        SectionBlock(
            text=_md(
                f"{_ICONS.get(i.severity, '')} *{escape(i.title)}*\n{escape(i.text)}",
                LIMITS["section"],
            )
        )
        for i in content.items[: LIMITS["blocks"] - 8]
    )
    if content.more:
        blocks.append(ContextBlock(elements=[_md(f"… and {content.more} more", 200)]))
    return blocks


def _closure(content: AlertContent) -> str:
    c = content.closure
    if c is None:
        return ""
    sla = "within the SLA" if c.within_sla else "*outside* the SLA"
    return (
        f":white_check_mark: Loop closed by {_person(c.closed_by)} "
        f"at {c.closed_at:%Y-%m-%d %H:%M} UTC, {sla}"
    )


def _person(who: str) -> str:
    """A Slack mention (``<@U123>``) stays a mention; any other name is escaped."""
    return who if _MENTION.fullmatch(who) else escape(who)


def _actions(content: AlertContent) -> ActionsBlock | None:
    buttons: list[ButtonElement] = []
    if content.account is not None and content.account.crm_url:
        buttons.append(
            ButtonElement(
                text="Open in CRM",
                action_id="ax_open_crm",
                url=truncate(content.account.crm_url, LIMITS["url"]),
            )
        )
    if (
        content.closable
        and content.closure is None
        and len(content.alert_id) <= LIMITS["button_value"]
    ):
        buttons.append(
            ButtonElement(
                text="Close loop",
                action_id=CLOSE_LOOP_ACTION,
                value=content.alert_id,
                style="primary",
            )
        )
    return ActionsBlock(elements=buttons) if buttons else None
