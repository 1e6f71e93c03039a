"""A small, time-independent portfolio for the agent's end-to-end tests.

Responses are ten days old (recency 100, not overdue by minutes), so the figures the
agent writes do not depend on when exactly a run happens.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from tests.salesforce.fake import FakeSalesforce

TITLES = ("Chief Executive Officer", "Head of Support", "Engineer")


@dataclass(frozen=True)
class Portfolio:
    accounts: int = 6
    contacts_per_account: int = 3

    def account_rows(self) -> list[dict[str, str]]:
        return [
            {
                "id": f"A{i}",
                "name": f"Account {i}",
                "domain": f"acct{i}.example",
                "revenue": str(100_000 * (self.accounts - i + 1)),
                "revenue_potential": "",
                "owner_email": "",
            }
            for i in range(1, self.accounts + 1)
        ]

    def contact_rows(self) -> list[dict[str, str]]:
        return [
            {
                "id": f"C{i}-{j}",
                "account_id": f"A{i}",
                "email": f"p{j}@acct{i}.example",
                "name": f"Person {i}-{j}",
                "title": TITLES[j % len(TITLES)],
                "tier": "",
            }
            for i in range(1, self.accounts + 1)
            for j in range(self.contacts_per_account)
        ]

    def response_rows(self, now: datetime | None = None) -> list[dict[str, object]]:
        """Every second account answers: its executive a detractor, the others promoters."""
        when = (now or datetime.now(UTC)) - timedelta(days=10)
        rows: list[dict[str, object]] = []
        for i in range(1, self.accounts + 1, 2):
            for j in range(self.contacts_per_account):
                rows.append(
                    {
                        "response_id": f"r{i}-{j}",
                        "email": f"p{j}@acct{i}.example",
                        "score": 3 if j == 0 else 9,
                        "submitted_at": when.isoformat(timespec="seconds"),
                        "driver": "Support" if j == 0 else "Product",
                        "comment": f"answer {i}-{j}",
                    }
                )
        return rows

    def write_folder(self, folder: Path, *, responses: bool = True) -> Path:
        """The plain-file CRM folder (with its responses file, empty unless ``responses``)."""
        folder.mkdir(parents=True, exist_ok=True)
        _csv(folder / "accounts.csv", self.account_rows())
        _csv(folder / "contacts.csv", self.contact_rows())
        rows = self.response_rows() if responses else []
        header = ["response_id", "email", "score", "submitted_at", "driver", "comment"]
        _csv(folder / "responses.csv", rows, header)
        return folder

    def fill_org(self, fake: FakeSalesforce) -> dict[str, str]:
        """The same accounts and contacts in a fake Salesforce org; our id -> org id."""
        ids: dict[str, str] = {}
        for row in self.account_rows():
            ids[row["id"]] = fake.org.insert(
                "Account",
                {
                    "Name": row["name"],
                    "Website": row["domain"],
                    "AnnualRevenue": float(row["revenue"]),
                    "Owner": {"Email": "owner@vendor.example"},
                },
            )
        for row in self.contact_rows():
            ids[row["id"]] = fake.org.insert(
                "Contact",
                {
                    "AccountId": ids[row["account_id"]],
                    "Email": row["email"],
                    "Name": row["name"],
                    "Title": row["title"],
                },
            )
        return ids


def write_jsonl(path: Path, rows: list[dict[str, object]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_csv(path: Path, rows: list[dict[str, object]]) -> Path:
    _csv(path, rows)
    return path


def _csv(path: Path, rows: list[dict[str, object]] | list[dict[str, str]], header=None) -> None:  # type: ignore[no-untyped-def]
    names = header or (list(rows[0]) if rows else [])
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=names)
        writer.writeheader()
        writer.writerows(rows)
