"""The demo portfolio: about 250 accounts where a good NPS hides most of the revenue.

Deterministic (seeded): every run of ``ax-agent demo`` shows the same figures. Like
the seed example of DOMAIN.md, feedback comes mostly from smaller accounts, so NPS
looks good while account and revenue coverage are low; a few large accounts have
unhappy executives, which the revenue-weighted drivers bring to the top.
"""

from __future__ import annotations

import csv
import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

__all__ = ["DEMO_AS_OF", "write_demo_folder"]

DEMO_AS_OF = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)

_ACCOUNTS = 250
_SEGMENTS = ("Enterprise", "Mid-Market", "SMB")
_REGIONS = ("DACH", "Nordics", "UK", "Benelux")
_TITLES = {
    "executive": ("Chief Executive Officer", "CFO", "VP Operations", "Managing Director"),
    "management": ("Head of Support", "IT Manager", "Director Customer Service", "Team Lead"),
    "frontline": ("Support Agent", "Engineer", "Analyst", "Sales Representative"),
}
_DRIVERS = ("Support", "Self-Service", "Product", "Account Management", "Onboarding", "Pricing")
_FIRST = ("Anna", "Ben", "Clara", "David", "Eva", "Felix", "Greta", "Hans", "Ida", "Jonas")
_LAST = ("Berg", "Fischer", "Hoffmann", "Klein", "Lange", "Meyer", "Neumann", "Schulz")


def write_demo_folder(folder: Path, seed: int = 7) -> None:
    """Write accounts.csv, contacts.csv, responses.csv and as_of.txt into ``folder``."""
    rng = random.Random(seed)  # noqa: S311  # seeded sample data, not a secret
    folder.mkdir(parents=True, exist_ok=True)
    accounts = _accounts(rng)
    contacts = _contacts(rng, accounts)
    responses = _responses(rng, accounts, contacts)
    _write_csv(folder / "accounts.csv", accounts)
    _write_csv(folder / "contacts.csv", contacts)
    _write_csv(folder / "responses.csv", responses)
    (folder / "as_of.txt").write_text(DEMO_AS_OF.isoformat() + "\n", encoding="utf-8")


def _accounts(rng: random.Random) -> list[dict[str, str]]:
    rows = []
    for i in range(1, _ACCOUNTS + 1):
        revenue = round(rng.lognormvariate(11.3, 1.1), -2)
        segment = _SEGMENTS[0] if revenue > 250_000 else _SEGMENTS[1 if revenue > 60_000 else 2]
        potential = round(revenue * rng.choice((1.5, 2.5, 4.0)), -2) if rng.random() < 0.4 else None
        rows.append(
            {
                "id": f"ACC-{i:04d}",
                "name": f"{rng.choice(_LAST)} {rng.choice(('GmbH', 'AG', 'SE', 'KG', 'Ltd'))} {i}",
                "domain": f"https://www.customer{i}.example/",
                "revenue": f"{revenue:.0f}",
                "revenue_potential": "" if potential is None else f"{potential:.0f}",
                "owner_email": f"owner{i % 9 + 1}@vendor.example",
                "segment": segment,
                "region": rng.choice(_REGIONS),
            }
        )
    return rows


def _contacts(rng: random.Random, accounts: list[dict[str, str]]) -> list[dict[str, str]]:
    rows = []
    for i, account in enumerate(accounts, start=1):
        for j in range(1, rng.randint(3, 9) + 1):
            tier = (
                ("executive", "management", "frontline")[min(2, (j - 1) // 2)]
                if j < 5
                else "frontline"
            )
            first = rng.choice(_FIRST)
            rows.append(
                {
                    "id": f"CON-{i:04d}-{j}",
                    "account_id": account["id"],
                    "email": f"{first.lower()}.{j}@customer{i}.example",
                    "name": f"{first} {rng.choice(_LAST)}",
                    "title": rng.choice(_TITLES[tier]),
                    "tier": "",
                }
            )
    return rows


def _responses(
    rng: random.Random, accounts: list[dict[str, str]], contacts: list[dict[str, str]]
) -> list[dict[str, str]]:
    by_account: dict[str, list[dict[str, str]]] = {}
    for c in contacts:
        by_account.setdefault(c["account_id"], []).append(c)
    ranked = sorted(accounts, key=lambda a: -float(a["revenue"]))
    big = {a["id"] for a in ranked[:6]}
    # Most answers come from the smaller accounts; a few large ones answer, unhappily.
    answering = [a for a in ranked[60:] if rng.random() < 0.22] + ranked[2:6]
    rows: list[dict[str, str]] = []
    for account in answering:
        people = by_account[account["id"]]
        if account["id"] in big:
            # Front line loves it, the executive does not: the churn pattern to catch.
            chosen = [people[0], *people[4:6]]
        else:
            chosen = rng.sample(people, k=min(len(people), rng.randint(1, 3)))
        for person in chosen:
            rows.append(_answer(rng, len(rows) + 1, person, unhappy=account["id"] in big))
    rows.extend(_awkward_rows(len(rows)))
    return rows


def _answer(rng: random.Random, n: int, person: dict[str, str], *, unhappy: bool) -> dict[str, str]:
    executive = person["title"] in _TITLES["executive"]
    if unhappy and executive:
        score, driver = rng.choice((2, 3, 4, 5)), "Account Management"
    elif unhappy:
        score, driver = rng.choice((9, 10)), rng.choice(("Self-Service", "Support"))
    else:
        score = rng.choices(range(11), weights=(1, 0, 1, 1, 1, 2, 2, 5, 7, 18, 20))[0]
        driver = rng.choice(_DRIVERS)
    submitted = DEMO_AS_OF - timedelta(days=rng.uniform(0.5, 200))
    closed = ""
    if score <= 6 and rng.random() < 0.5:
        closed = (submitted + timedelta(hours=rng.uniform(4, 90))).isoformat()
    return {
        "response_id": f"SRV-{n:05d}",
        "email": person["email"],
        "score": str(score),
        "submitted_at": submitted.replace(microsecond=0).isoformat(),
        "driver": driver,
        "comment": "Our account team has not called back." if unhappy and executive else "",
        "account_hint": "",
        "loop_closed_at": closed,
    }


def _awkward_rows(n: int) -> list[dict[str, str]]:
    """Real survey exports have these: a free-mail sender, a typo'd score, a future date."""
    base = {"driver": "Support", "comment": "", "account_hint": "", "loop_closed_at": ""}
    return [
        {
            **base,
            "response_id": f"SRV-{n + 1:05d}",
            "email": "jane.doe@gmail.com",
            "score": "9",
            "submitted_at": "2026-05-20T09:00:00Z",
        },
        {
            **base,
            "response_id": f"SRV-{n + 2:05d}",
            "email": "max@customer7.example",
            "score": "9.5",
            "submitted_at": "2026-05-21T09:00:00Z",
        },
        {
            **base,
            "response_id": f"SRV-{n + 3:05d}",
            "email": "lea@customer8.example",
            "score": "8",
            "submitted_at": "2026-07-01T09:00:00Z",
        },
    ]


def _write_csv(path: Path, rows: list[dict[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":  # pragma: no cover - a maintainer's convenience
    import sys

    write_demo_folder(Path(sys.argv[1]))
    print(json.dumps({"written": sys.argv[1]}))  # noqa: T201
