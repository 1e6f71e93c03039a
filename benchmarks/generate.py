"""A deterministic synthetic portfolio for benchmarks (and anything else that needs size).

Seeded: the same arguments always give the same accounts, contacts and responses.
Revenue is lognormal (a few large accounts, a long tail), contacts are spread over
accounts at random (about ``contacts / accounts`` each), titles cover every tier,
and the responses mix every matching path: contacts, contact-less answers from an
account's domain, account hints, free-mail, ambiguous and unknown domains, and
answers older than the window.

    python -m benchmarks.generate OUT_DIR --accounts 500 --contacts 5000 --responses 10000

writes a CRM folder (``accounts.csv``, ``contacts.csv``, ``responses.csv``).
"""

from __future__ import annotations

import argparse
import csv
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

from agent.core.models import Account, Contact, Response
from agent.sources.plainfiles import RESPONSE_COLUMNS

__all__ = ["AS_OF", "Portfolio", "generate", "write_crm_folder"]

AS_OF = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)

_TITLES = (
    "Chief Executive Officer",
    "VP Customer Success",
    "CFO",
    "Founder",
    "Head of Support",
    "IT Manager",
    "Team Lead Operations",
    "Director of Engineering",
    "Engineer",
    "Support Agent",
    "Analyst",
    "Developer",
    "Accountant",
    "Consultant",
    "",
)
_CRM_TIERS = ("executive", "Management", " frontline ", "c-level")
_DRIVERS = ("Support", "Product", "Self-Service", "Account Management", "Pricing", "Onboarding")
_SCORES = (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10)
_SCORE_WEIGHTS = (2, 1, 1, 2, 2, 4, 6, 10, 14, 26, 32)
_FREE_MAIL = ("gmail.com", "outlook.com", "yahoo.com", "gmx.de")
_SHARED_EVERY = 1000  # every n-th account also lists a domain shared with its neighbour


class Portfolio(NamedTuple):
    """A generated portfolio; unpacks as ``accounts, contacts, responses``."""

    accounts: list[Account]
    contacts: list[Contact]
    responses: list[Response]


def _accounts(count: int, rng: random.Random) -> list[Account]:
    accounts: list[Account] = []
    for i in range(count):
        revenue = round(rng.lognormvariate(11.0, 1.4), 2)
        potential = round(revenue * rng.uniform(0.8, 4.0), 2) if rng.random() < 0.4 else None
        domains = [f"https://www.acct{i}.example/"]
        if i % _SHARED_EVERY in {0, 1}:
            domains.append(f"shared{i // _SHARED_EVERY}.example")
        accounts.append(
            Account(
                id=f"A{i:07d}",
                name=f"Account {i}",
                domains=tuple(domains),
                revenue=revenue,
                revenue_potential=potential,
                attributes={"segment": rng.choice(("Enterprise", "Mid-Market", "SMB"))},
            )
        )
    return accounts


def _contacts(count: int, accounts: list[Account], rng: random.Random) -> list[Contact]:
    contacts: list[Contact] = []
    for j in range(count):
        i = rng.randrange(len(accounts))
        contacts.append(
            Contact(
                id=f"C{j:08d}",
                account_id=accounts[i].id,
                email=None if rng.random() < 0.03 else f"c{j}@acct{i}.example",
                name=f"Contact {j}",
                title=rng.choice(_TITLES),
                crm_tier=rng.choice(_CRM_TIERS) if rng.random() < 0.05 else None,
            )
        )
    return contacts


def _email_and_hint(
    contacts: list[Contact], accounts: list[Account], rng: random.Random
) -> tuple[str | None, str | None]:
    """Who answers: mostly known contacts, some of every other matching path."""
    roll = rng.random()
    if roll < 0.80 and contacts:
        email = rng.choice(contacts).email
        return (email.upper() if email and rng.random() < 0.1 else email), None
    i = rng.randrange(len(accounts))
    if roll < 0.88:
        return f"person{rng.randrange(50)}@acct{i}.example", None
    if roll < 0.92:
        return f"anon{rng.randrange(10**6)}@{rng.choice(_FREE_MAIL)}", accounts[i].id
    if roll < 0.96:
        return f"someone{rng.randrange(10**6)}@{rng.choice(_FREE_MAIL)}", None
    if roll < 0.98:
        return f"who{rng.randrange(100)}@shared{i // _SHARED_EVERY}.example", None
    return f"nobody{rng.randrange(10**6)}@unknown{i}.example", None


def _responses(
    count: int, accounts: list[Account], contacts: list[Contact], rng: random.Random
) -> list[Response]:
    responses: list[Response] = []
    for n in range(count):
        email, hint = _email_and_hint(contacts, accounts, rng)
        score = rng.choices(_SCORES, _SCORE_WEIGHTS)[0]
        submitted = AS_OF - timedelta(seconds=rng.randrange(450 * 86_400))
        closed = None
        if score <= 6 and rng.random() < 0.5:
            closed = submitted + timedelta(seconds=rng.randrange(96 * 3_600))
        responses.append(
            Response(
                response_id=f"r{n:08d}",
                email=email,
                score=score,
                submitted_at=submitted,
                driver=rng.choice(_DRIVERS) if rng.random() < 0.9 else None,
                account_hint=hint,
                loop_closed_at=closed,
                source="responses.csv",
            )
        )
    return responses


def generate(
    accounts: int = 50_000, contacts: int = 500_000, responses: int = 1_000_000, *, seed: int = 7
) -> Portfolio:
    """A synthetic portfolio of the given size; the same seed gives the same portfolio."""
    rng = random.Random(seed)
    account_list = _accounts(accounts, rng)
    contact_list = _contacts(contacts, account_list, rng)
    return Portfolio(
        account_list, contact_list, _responses(responses, account_list, contact_list, rng)
    )


def _iso(moment: datetime | None) -> str:
    return "" if moment is None else moment.isoformat().replace("+00:00", "Z")


def write_crm_folder(folder: Path, portfolio: Portfolio) -> Path:
    """Write the portfolio as a plain-file CRM folder; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "accounts.csv").open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(
            ["id", "name", "domain", "revenue", "revenue_potential", "owner_email", "segment"]
        )
        for a in portfolio.accounts:
            potential = "" if a.revenue_potential is None else a.revenue_potential
            out.writerow(
                [
                    a.id,
                    a.name,
                    ";".join(a.domains),
                    a.revenue,
                    potential,
                    "",
                    a.attributes["segment"],
                ]
            )
    with (folder / "contacts.csv").open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow(["id", "account_id", "email", "name", "title", "tier"])
        for c in portfolio.contacts:
            out.writerow([c.id, c.account_id, c.email or "", c.name, c.title, c.crm_tier or ""])
    with (folder / "responses.csv").open("w", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        out.writerow([*RESPONSE_COLUMNS[0], *RESPONSE_COLUMNS[1]])
        for r in portfolio.responses:
            out.writerow(
                [
                    r.response_id,
                    r.email or "",
                    r.score,
                    _iso(r.submitted_at),
                    r.driver or "",
                    "",
                    r.account_hint or "",
                    _iso(r.loop_closed_at),
                ]
            )
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder to write the CRM files into")
    parser.add_argument("--accounts", type=int, default=250)
    parser.add_argument("--contacts", type=int, default=2_500)
    parser.add_argument("--responses", type=int, default=5_000)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    portfolio = generate(args.accounts, args.contacts, args.responses, seed=args.seed)
    print(write_crm_folder(args.out, portfolio))


if __name__ == "__main__":
    main()
