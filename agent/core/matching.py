"""Matching a response to a contact and account: DOMAIN.md's four steps, in order.

1. the email equals a contact's email (trimmed, case-insensitive; the first contact
   in input order wins a shared email);
2. the ``account_hint`` equals an account id (trimmed, case-sensitive);
3. the email's domain belongs to exactly one account and is not a free-mail domain;
4. otherwise unmatched, with the reason ``free_mail_domain`` (even when an account
   lists that domain), then ``ambiguous_domain``, else ``no_match``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from agent.core.document import UnmatchedReason
from agent.core.models import Account, Contact

__all__ = [
    "AMBIGUOUS_DOMAIN",
    "FREE_MAIL_DOMAIN",
    "NO_MATCH",
    "Match",
    "Matcher",
    "email_domain",
    "normalise_domain",
    "normalise_domains",
    "normalise_email",
]

NO_MATCH: UnmatchedReason = "no_match"
AMBIGUOUS_DOMAIN: UnmatchedReason = "ambiguous_domain"
FREE_MAIL_DOMAIN: UnmatchedReason = "free_mail_domain"

_TRIM = " \t"
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://")
_PATH = re.compile(r"[/?#]")


def normalise_domain(raw: str) -> str:
    """One domain as matching compares it: ``https://www.Acme.com/x`` is ``acme.com``.

    Trimmed, lowercased, ``scheme://`` removed, everything from the first ``/``,
    ``?`` or ``#`` removed, one leading ``www.`` removed.
    """
    text = _SCHEME.sub("", raw.strip(_TRIM).lower(), count=1)
    cut = _PATH.search(text)
    if cut is not None:
        text = text[: cut.start()]
    return text.removeprefix("www.")


def normalise_domains(raw: str | Iterable[str]) -> tuple[str, ...]:
    """Every ``;``-separated domain, normalised, empty ones dropped, each once."""
    parts = raw.split(";") if isinstance(raw, str) else (p for r in raw for p in r.split(";"))
    domains = (normalise_domain(part) for part in parts)
    return tuple(dict.fromkeys(d for d in domains if d))


def normalise_email(email: str | None) -> str:
    """Trimmed and lowercased; empty for no email."""
    return email.strip(_TRIM).lower() if email else ""


def email_domain(email: str | None) -> str:
    """The text after the last ``@`` of the trimmed, lowercased email; empty without ``@``."""
    address = normalise_email(email)
    at = address.rfind("@")
    return address[at + 1 :] if at >= 0 else ""


class Match(NamedTuple):
    """Where a response belongs: an account (and maybe a contact), or why nowhere.

    ``contact`` is the index of the contact in the sequence the Matcher was built
    from (so callers can key per-contact data by position without hashing ids).
    """

    account_id: str | None
    contact: int | None
    reason: UnmatchedReason | None


_new_match = tuple.__new__
#: The three ways of matching nothing: one value each, shared (a tuple never changes).
_NO_MATCH, _FREE_MAIL, _AMBIGUOUS = (
    Match(None, None, reason) for reason in (NO_MATCH, FREE_MAIL_DOMAIN, AMBIGUOUS_DOMAIN)
)


class Matcher:
    """Indexes of a portfolio's contacts and domains, built once per cycle."""

    def __init__(
        self,
        accounts: Sequence[Account],
        contacts: Sequence[Contact],
        free_mail_domains: Iterable[str],
    ) -> None:
        self._account_ids = frozenset(a.id for a in accounts)
        # Each email's Match, built once: a survey matches most of its answers by email,
        # and returning the same value costs neither a tuple nor a look-up per answer.
        self._by_email: dict[str, Match] = {}
        account_ids, by_email = self._account_ids, self._by_email
        for index, contact in enumerate(contacts):
            raw = contact.email
            email = raw.strip(_TRIM).lower() if raw else ""  # normalise_email, inline
            if email == raw:
                email = raw  # already normal: the contact's own string, not a copy of it
            if email and email not in by_email and contact.account_id in account_ids:
                by_email[email] = _new_match(Match, (contact.account_id, index, None))
        self._free_mail = frozenset(d.strip(_TRIM).lower() for d in free_mail_domains)
        self._by_domain: dict[str, str | None] = {}
        for account in accounts:
            for domain in normalise_domains(account.domains):
                known = self._by_domain.setdefault(domain, account.id)
                if known != account.id:
                    self._by_domain[domain] = None  # listed by several accounts

    def match(self, email: str | None, account_hint: str | None) -> Match:
        """Apply the four steps to one response's email and hint."""
        address = email.strip(_TRIM).lower() if email else ""  # normalise_email, inline
        if address:
            by_email = self._by_email.get(address)
            if by_email is not None:  # the common case
                return by_email
        hint = account_hint.strip(_TRIM) if account_hint else ""
        if hint in self._account_ids:
            return _new_match(Match, (hint, None, None))
        return self._match_domain(address)

    def _match_domain(self, address: str) -> Match:
        at = address.rfind("@")
        if at < 0:
            return _NO_MATCH
        domain = address[at + 1 :]
        if domain in self._free_mail:
            return _FREE_MAIL
        if domain not in self._by_domain:
            return _NO_MATCH
        account_id = self._by_domain[domain]
        if account_id is None:
            return _AMBIGUOUS
        return _new_match(Match, (account_id, None, None))
