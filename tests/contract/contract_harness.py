"""The handle a CRM's contract tests get on its fake, and what every contract test shares."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

import pytest
from contract_support import SEED_ACCOUNTS, SEED_CONTACTS, SeedAccount, SeedContact

from agent.core.contract import FieldSpec, ObjectKind
from agent.core.ports import CrmConnector, FieldValue
from agent.sync.writeback import crm_field

__all__ = ["ContractBase", "CrmHarness"]


class CrmHarness(Protocol):
    """What a connector's contract test supplies as the ``crm_harness`` fixture."""

    #: The connector's ``name``: also which ``FieldSpec`` attribute names its fields.
    name: str
    #: The agent's fields as provisioned in the fake CRM.
    specs: Sequence[FieldSpec]
    #: Whether ``write`` can refuse a record (one deleted meanwhile, for instance).
    refuses_records: bool
    #: Whether the CRM has a schema in which one of the agent's fields can be missing.
    has_schema: bool

    def seed(
        self, accounts: Sequence[SeedAccount], contacts: Sequence[SeedContact]
    ) -> dict[str, str]:
        """Create records (fields provisioned); return seed key -> CRM id."""
        ...

    def connector(self) -> CrmConnector:
        """A new connector on this CRM."""
        ...

    def rename(self, obj: ObjectKind, record_id: str, name: str) -> None:
        """Change a record so it shows as changed well after the seed (beyond any overlap)."""
        ...

    def delete(self, obj: ObjectKind, record_id: str) -> None:
        """Delete a record, later than the seed as above."""
        ...

    def drop_field(self, spec: FieldSpec) -> None:
        """Make one of the agent's fields missing from the CRM (only with ``has_schema``)."""
        ...

    def stored(self, obj: ObjectKind, record_id: str) -> Mapping[str, FieldValue]:
        """The CRM's current values of the agent's fields (by CRM field name), decoded."""
        ...

    def update_calls(self) -> int:
        """Update calls the CRM has counted so far."""
        ...


class ContractBase:
    """The seeded records' ids and field names, for the contract's test classes."""

    @pytest.fixture
    def ids(self, crm_harness: CrmHarness) -> dict[str, str]:
        return crm_harness.seed(SEED_ACCOUNTS, SEED_CONTACTS)

    def field(self, harness: CrmHarness, obj: ObjectKind, logical: str) -> str:
        return crm_field(self.spec(harness, obj, logical), harness.name)

    def spec(self, harness: CrmHarness, obj: ObjectKind, logical: str) -> FieldSpec:
        return next(s for s in harness.specs if s.object == obj and s.logical == logical)
