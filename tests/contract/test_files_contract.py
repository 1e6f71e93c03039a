"""The CRM connector contract, run against the plain-file CRM in a temporary folder.

The folder holds ``accounts.csv`` and ``contacts.csv`` in DOMAIN.md's format; the
connector writes the agent's figures to ``ax_accounts.csv`` / ``ax_contacts.csv``.
The files are the agent's own, so no record is ever refused and no field can be
missing: the harness says so and those contract tests are skipped. An update call
is one ``write`` (one atomic rewrite of the figures file), counted by a wrapper.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import pytest
from contract_support import SeedAccount, SeedContact
from crm_contract import CrmContract

from agent.core.contract import (
    FieldOverride,
    FieldsConfig,
    FieldSpec,
    ObjectKind,
    default_field_specs,
)
from agent.core.models import Account, Contact
from agent.core.ports import Batch, FieldProblem, FieldUpdate, FieldValue, WriteOutcome
from agent.sources.files import FilesCrm, written_file
from agent.sources.plainfiles import read_written
from agent.sync.writeback import normalise

_ACCOUNT_COLUMNS = ["id", "name", "domain", "revenue", "revenue_potential", "owner_email"]
_CONTACT_COLUMNS = ["id", "account_id", "email", "name", "title", "tier"]


class CountingCrm:
    """A ``FilesCrm`` whose ``write`` calls are counted."""

    def __init__(self, crm: FilesCrm, counter: list[int]) -> None:
        self._crm = crm
        self._counter = counter
        self.name = crm.name
        self.max_write_batch = crm.max_write_batch

    def read_accounts(self, cursor: str | None) -> Iterator[Batch[Account]]:
        return self._crm.read_accounts(cursor)

    def read_contacts(self, cursor: str | None) -> Iterator[Batch[Contact]]:
        return self._crm.read_contacts(cursor)

    def check_fields(self, specs: Sequence[FieldSpec]) -> list[FieldProblem]:
        return self._crm.check_fields(specs)

    def write(self, obj: ObjectKind, updates: Sequence[FieldUpdate]) -> list[WriteOutcome]:
        self._counter[0] += 1
        return self._crm.write(obj, updates)


class FilesHarness:
    name = "files"
    refuses_records = False
    has_schema = False

    def __init__(self, folder: Path, specs: Sequence[FieldSpec]) -> None:
        self.folder = folder
        self.specs = specs
        self.accounts: dict[str, dict[str, str]] = {}
        self.contacts: dict[str, dict[str, str]] = {}
        self.writes = [0]
        self._save()

    def seed(
        self, accounts: Sequence[SeedAccount], contacts: Sequence[SeedContact]
    ) -> dict[str, str]:
        ids: dict[str, str] = {}
        for a in accounts:
            ids[a.key] = f"A-{a.key}"
            self.accounts[ids[a.key]] = {
                "name": a.name,
                "domain": a.website,
                "revenue": repr(a.revenue),
                "revenue_potential": "",
                "owner_email": a.owner_email or "",
            }
        for c in contacts:
            ids[c.key] = f"C-{c.key}"
            self.contacts[ids[c.key]] = {
                "account_id": ids[c.account_key],
                "email": c.email,
                "name": c.name,
                "title": c.title,
                "tier": "",
            }
        self._save()
        return ids

    def connector(self) -> CountingCrm:
        return CountingCrm(FilesCrm(self.folder), self.writes)

    def rename(self, obj: ObjectKind, record_id: str, name: str) -> None:
        self._table(obj)[record_id]["name"] = name
        self._save()

    def delete(self, obj: ObjectKind, record_id: str) -> None:
        del self._table(obj)[record_id]
        self._save()

    def drop_field(self, spec: FieldSpec) -> None:
        raise NotImplementedError("the agent's own files have no schema to drop a field from")

    def stored(self, obj: ObjectKind, record_id: str) -> Mapping[str, FieldValue]:
        row = read_written(written_file(self.folder, obj)).get(record_id, {})
        return {s.files: normalise(s, row.get(s.files)) for s in self.specs if s.object == obj}

    def update_calls(self) -> int:
        return self.writes[0]

    def _table(self, obj: ObjectKind) -> dict[str, dict[str, str]]:
        return self.accounts if obj == "account" else self.contacts

    def _save(self) -> None:
        _write_csv(self.folder / "accounts.csv", _ACCOUNT_COLUMNS, self.accounts)
        _write_csv(self.folder / "contacts.csv", _CONTACT_COLUMNS, self.contacts)


def _write_csv(path: Path, columns: list[str], rows: Mapping[str, Mapping[str, str]]) -> None:
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for rid, row in rows.items():
            writer.writerow([rid, *(row[c] for c in columns[1:])])


#: Admins may name the figures' columns as they like: capitals and spaces must survive.
RENAMED = FieldsConfig(
    overrides={
        "account.nps": FieldOverride(files="NPS"),
        "account.health_status": FieldOverride(files="Health Status"),
        "account.tiers_covered": FieldOverride(files="Tiers Covered"),
        "contact.tier": FieldOverride(files="AX Tier"),
    }
).specs()


class TestFilesContract(CrmContract):
    @pytest.fixture(params=["default names", "renamed fields"])
    def crm_harness(self, request: pytest.FixtureRequest, tmp_path: Path) -> FilesHarness:
        specs = RENAMED if request.param == "renamed fields" else default_field_specs()
        return FilesHarness(tmp_path, specs)
