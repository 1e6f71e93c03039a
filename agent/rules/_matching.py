"""Per-response facts for rules (which account and contact, tier, counted).

A small stand-in following DOMAIN.md's matching and counting rules, used by
``ax-agent rules test`` until the core's matching module exposes the same
per-response result; the metrics themselves always come from the core.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta

from agent.config import MetricsConfig
from agent.models import Account, Contact, Response, Tier
from agent.rules.facts import ResponseFacts, crm_closed_at

__all__ = ["build_response_facts", "tier_of"]

_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://")


def tier_of(contact: Contact, config: MetricsConfig) -> Tier:
    """The CRM tier when it names one (mapped in config), else the title's pattern."""
    if contact.crm_tier:
        mapped = config.tier_values.get(contact.crm_tier.strip().lower())
        if mapped is not None:
            return mapped
    title = contact.title.strip()
    if not title:
        return "unknown"
    for pattern in config.tier_patterns:
        if re.search(pattern.pattern, title, re.IGNORECASE):
            return pattern.tier
    return "unknown"


def _domain(raw: str) -> str:
    value = _SCHEME.sub("", raw.strip().lower())
    value = re.split(r"[/?#]", value, maxsplit=1)[0]
    return value.removeprefix("www.")


def build_response_facts(
    accounts: Sequence[Account],
    contacts: Sequence[Contact],
    responses: Iterable[Response],
    *,
    as_of: datetime,
    config: MetricsConfig,
    closed_field: str | None = None,
) -> list[ResponseFacts]:
    """Matched responses with their account, contact, tier and whether they count."""
    by_id = {a.id: a for a in accounts}
    by_email: dict[str, Contact] = {}
    for contact in contacts:
        if contact.account_id in by_id and contact.email:
            by_email.setdefault(contact.email.strip().lower(), contact)
    owners: dict[str, set[str]] = {}
    for account in accounts:
        for domain in account.domains:
            owners.setdefault(_domain(domain), set()).add(account.id)
    free = set(config.free_mail_domains)
    matched: list[ResponseFacts] = []
    for response in responses:
        facts = _match(
            response, by_id=by_id, by_email=by_email, owners=owners, free=free, config=config
        )
        if facts is not None:
            matched.append(facts)
    return _mark_counted(matched, as_of, config, closed_field)


def _match(
    response: Response,
    *,
    by_id: dict[str, Account],
    by_email: dict[str, Contact],
    owners: dict[str, set[str]],
    free: set[str],
    config: MetricsConfig,
) -> ResponseFacts | None:
    email = (response.email or "").strip().lower()
    contact = by_email.get(email) if email else None
    if contact is not None:
        account = by_id[contact.account_id]
        return ResponseFacts(response, account, contact, tier_of(contact, config), False)
    hint = (response.account_hint or "").strip()
    if hint in by_id:
        return ResponseFacts(response, by_id[hint], None, "unknown", False)
    domain = email.rsplit("@", 1)[1] if "@" in email else ""
    candidates = owners.get(domain, set())
    if domain and domain not in free and len(candidates) == 1:
        return ResponseFacts(response, by_id[next(iter(candidates))], None, "unknown", False)
    return None


def _mark_counted(
    facts: list[ResponseFacts], as_of: datetime, config: MetricsConfig, closed_field: str | None
) -> list[ResponseFacts]:
    """In the window, and the latest answer of each respondent (ties: larger id)."""
    start = as_of - timedelta(days=config.window_days)
    latest: dict[str, ResponseFacts] = {}
    for item in facts:
        r = item.response
        if not (start <= r.submitted_at <= as_of):
            continue
        key = f"c:{item.contact.id}" if item.contact else f"e:{(r.email or '').strip().lower()}"
        if not (r.email or "").strip() and item.contact is None:
            key = f"r:{r.source}/{r.response_id}"
        best = latest.get(key)
        if best is None or (r.submitted_at, r.response_id) > (
            best.response.submitted_at,
            best.response.response_id,
        ):
            latest[key] = item
    counted = {id(item) for item in latest.values()}
    return [
        ResponseFacts(
            f.response,
            f.account,
            f.contact,
            f.tier,
            id(f) in counted,
            crm_closed_at(f.contact, closed_field),
        )
        for f in facts
    ]
