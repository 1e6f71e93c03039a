"""What the CRM contract suite seeds, computes and keeps between cycles.

Seeds are vendor-neutral records each harness creates in its CRM's own terms. The
figures to write come from a small ``MetricsDocument`` whose values sit on the
planner's rounding edges (an NPS of 12.25, ratios written as percent, a timestamp
with microseconds and an offset), so write-back goes through ``agent.sync.writeback``
exactly as a cycle does. ``Mirror`` is the agent's copy of the CRM as
``agent.sync.cycle.sync_crm`` keeps it: full and incremental reads merged by id, a
snapshot read replacing everything, and the values the CRM confirmed writing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any, Generic, TypeVar

from agent.core.contract import FieldSpec, ObjectKind
from agent.core.document import AccountMetrics, ContactFigures, MetricsDocument, PortfolioMetrics
from agent.core.models import Account, Contact
from agent.core.ports import Batch, CrmConnector, FieldUpdate, FieldValue, WriteOutcome
from agent.sync.writeback import WritebackCounts, crm_field, desired_values, execute, plan_updates

__all__ = [
    "AS_OF",
    "OBJECTS",
    "SEED_ACCOUNTS",
    "SEED_CONTACTS",
    "Mirror",
    "Read",
    "SeedAccount",
    "SeedContact",
    "contract_document",
    "differences",
    "merged",
    "plan",
    "read_all",
    "with_account",
]

R = TypeVar("R", Account, Contact)
OBJECTS: tuple[ObjectKind, ...] = ("account", "contact")
AS_OF = datetime(2026, 2, 1, 12, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class SeedAccount:
    key: str
    name: str
    website: str
    revenue: float
    owner_email: str | None = None


@dataclass(frozen=True, slots=True)
class SeedContact:
    key: str
    account_key: str
    email: str
    name: str
    title: str


SEED_ACCOUNTS: tuple[SeedAccount, ...] = (
    SeedAccount("acme", "Acme GmbH", "https://www.acme.example/", 120000.0, "rep@vendor.example"),
    SeedAccount("globex", "Globex Corp", "globex.example", 55000.5),
    SeedAccount("initech", "Initech", "http://initech.example/about", 0.0),
)
SEED_CONTACTS: tuple[SeedContact, ...] = (
    SeedContact("ann", "acme", "ann@acme.example", "Ann Berg", "Chief Executive Officer"),
    SeedContact("bob", "acme", "bob@acme.example", "Bob Cole", "Support Agent"),
    SeedContact("cy", "globex", "cy@globex.example", "Cy Dorn", "Head of IT"),
    SeedContact("di", "initech", "di@initech.example", "Di Eck", ""),
)

# -- the figures ------------------------------------------------------------------------

_CEST = timezone(timedelta(hours=2))
_PORTFOLIO = PortfolioMetrics(
    accounts=3,
    accounts_with_feedback=2,
    account_coverage=2 / 3,
    total_revenue=175000.5,
    covered_revenue=175000.5,
    revenue_coverage=1.0,
    contacts=4,
    responded_contacts=3,
    response_rate=0.75,
    nps=0.0,
    nps_strict=-25.0,
    revenue_weighted_nps=None,
    full_tier_coverage_accounts=0,
    at_risk_accounts=1,
    at_risk_revenue=55000.5,
    detractors=1,
    detractors_closed_in_sla=0,
    closed_loop_rate=0.0,
)


def _acme(account_id: str) -> AccountMetrics:
    """Figures on rounding edges: half-up where Python's round() would go to even."""
    return AccountMetrics(
        id=account_id,
        name="Acme GmbH",
        revenue=120000.0,
        contacts=8,
        respondents=2,
        promoters=1,
        passives=0,
        detractors=1,
        nps=12.25,  # 12.3 half-up (round() gives 12.2)
        nps_strict=-33.35,  # -33.4
        contact_coverage=0.125,  # 13 % half-up (round() gives 12)
        tiers_covered=["frontline", "executive"],
        tier_coverage=2 / 3,  # 67 %
        tier_nps={"executive": 100.0, "frontline": -100.0},
        tier_misaligned=True,
        last_response_at=datetime(2026, 1, 30, 14, 5, 6, 987654, tzinfo=_CEST),
        recency_score=100.0,
        health_score=62.5,  # 63 half-up (round() gives 62)
        health_status="neutral",
        at_risk=False,
        open_detractors=1,
        overdue_detractors=0,
        upsell_candidate=True,
    )


def _globex(account_id: str) -> AccountMetrics:
    return AccountMetrics(
        id=account_id,
        name="Globex Corp",
        revenue=55000.5,
        contacts=1,
        respondents=1,
        promoters=0,
        passives=1,
        detractors=0,
        nps=0.0,
        nps_strict=0.0,
        contact_coverage=1.0,
        tiers_covered=["management"],
        tier_coverage=1 / 3,
        tier_nps={"management": 0.0},
        tier_misaligned=False,
        last_response_at=datetime(2025, 11, 2, 8, 0, tzinfo=UTC),
        recency_score=100.0,
        health_score=39.49,
        health_status="at_risk",
        at_risk=True,
        open_detractors=0,
        overdue_detractors=0,
        upsell_candidate=False,
    )


def _initech(account_id: str) -> AccountMetrics:
    """No feedback: null figures clear nothing, false flags and zero counts are written."""
    return AccountMetrics(
        id=account_id,
        name="Initech",
        revenue=0.0,
        contacts=1,
        respondents=0,
        promoters=0,
        passives=0,
        detractors=0,
        nps=None,
        nps_strict=-100.0,
        contact_coverage=0.0,
        tiers_covered=[],
        tier_coverage=0.0,
        tier_nps={},
        tier_misaligned=False,
        last_response_at=None,
        recency_score=None,
        health_score=None,
        health_status="no_feedback",
        at_risk=False,
        open_detractors=0,
        overdue_detractors=0,
        upsell_candidate=False,
    )


def contract_document(ids: Mapping[str, str]) -> MetricsDocument:
    """The seeded portfolio's figures, keyed by the CRM's ids."""
    ann_at = datetime(2026, 1, 30, 14, 5, 6, 987654, tzinfo=_CEST)
    bob_at = datetime(2026, 1, 12, 9, 30, tzinfo=UTC)
    cy_at = datetime(2025, 11, 2, 8, 0, tzinfo=UTC)
    contacts = [
        ContactFigures(ids["ann"], ids["acme"], "executive", 9, "promoter", ann_at),
        ContactFigures(ids["bob"], ids["acme"], "frontline", 3, "detractor", bob_at),
        ContactFigures(ids["cy"], ids["globex"], "management", 7, "passive", cy_at),
        ContactFigures(ids["di"], ids["initech"], "unknown"),
    ]
    accounts = [_acme(ids["acme"]), _globex(ids["globex"]), _initech(ids["initech"])]
    return MetricsDocument(AS_OF, _PORTFOLIO, accounts, [], [], [], contacts)


def with_account(doc: MetricsDocument, account_id: str, **changes: Any) -> MetricsDocument:
    """``doc`` with some figures of one account changed."""
    accounts = [replace(a, **changes) if a.id == account_id else a for a in doc.accounts]
    return replace(doc, accounts=accounts)


# -- planning and writing -----------------------------------------------------------------


def _by_field(specs: Sequence[FieldSpec], crm: str, obj: ObjectKind) -> dict[str, FieldSpec]:
    return {crm_field(s, crm): s for s in specs if s.object == obj}


def plan(
    doc: MetricsDocument,
    specs: Sequence[FieldSpec],
    crm: str,
    obj: ObjectKind,
    current: Mapping[str, Mapping[str, object]],
) -> list[FieldUpdate]:
    """The planner's updates for ``obj`` against what the CRM is taken to hold."""
    chosen = [s for s in specs if s.object == obj]
    desired = desired_values(doc, chosen, crm, obj)
    return plan_updates(desired, current, _by_field(specs, crm, obj))


def differences(
    updates: Sequence[FieldUpdate], current: Mapping[str, Mapping[str, object]]
) -> list[str]:
    """Each planned value beside what the CRM read back, for an assertion message."""
    return [
        f"{u.record_id}.{name}: planned {value!r}, read back {have.get(name)!r}"
        for u in updates
        for have in (current.get(u.record_id, {}),)
        for name, value in u.values.items()
    ]


# -- reading and mirroring ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Read(Generic[R]):
    """Everything one read yielded: records by id, deleted ids, its cursor, whether a snapshot."""

    records: dict[str, R]
    deleted: list[str]
    cursor: str | None
    snapshot: bool
    pages: int


def read_all(batches: Iterable[Batch[R]]) -> Read[R]:
    """One read's pages together; they must agree on whether the read is a snapshot."""
    records: dict[str, R] = {}
    deleted: list[str] = []
    cursor: str | None = None
    kinds: set[bool] = set()
    pages = 0
    for batch in batches:
        pages += 1
        records.update((r.id, r) for r in batch.records)
        deleted.extend(batch.deleted_ids)
        cursor = batch.cursor or cursor
        kinds.add(batch.snapshot)
    assert len(kinds) <= 1, "some pages of one read say snapshot and others do not"
    return Read(records, deleted, cursor, True in kinds, pages)


def merged(state: Mapping[str, R], read: Read[R]) -> dict[str, R]:
    """The state after ``read``: a snapshot replaces it; otherwise upsert, then delete."""
    out = {} if read.snapshot else dict(state)
    out.update(read.records)
    for record_id in read.deleted:
        out.pop(record_id, None)
    return out


@dataclass
class Mirror:
    """The agent's copy of one CRM between cycles, and the values the CRM confirmed."""

    accounts: dict[str, Account] = field(default_factory=dict)
    contacts: dict[str, Contact] = field(default_factory=dict)
    cursors: dict[ObjectKind, str | None] = field(
        default_factory=lambda: {"account": None, "contact": None}
    )
    confirmed: dict[ObjectKind, dict[str, dict[str, FieldValue]]] = field(
        default_factory=lambda: {"account": {}, "contact": {}}
    )

    def sync(self, connector: CrmConnector) -> None:
        """Read from the stored cursors (all on the first sync) and merge, as sync_crm does."""
        accounts = read_all(connector.read_accounts(self.cursors["account"]))
        self.accounts = merged(self.accounts, accounts)
        self.cursors["account"] = accounts.cursor or self.cursors["account"]
        contacts = read_all(connector.read_contacts(self.cursors["contact"]))
        self.contacts = merged(self.contacts, contacts)
        self.cursors["contact"] = contacts.cursor or self.cursors["contact"]

    def read_back(self, obj: ObjectKind) -> dict[str, dict[str, object]]:
        """What the CRM held in the agent's fields, as its reads reported it."""
        records: Mapping[str, Account | Contact] = (
            self.accounts if obj == "account" else self.contacts
        )
        return {rid: dict(r.crm_values) for rid, r in records.items()}

    def current(self, obj: ObjectKind) -> dict[str, dict[str, object]]:
        """Read-back overlaid with confirmed writes: what ``plan_writeback`` compares with."""
        current = self.read_back(obj)
        for rid, values in self.confirmed[obj].items():
            current.setdefault(rid, {}).update(values)
        return current

    def write_back(
        self, connector: CrmConnector, doc: MetricsDocument, specs: Sequence[FieldSpec]
    ) -> dict[ObjectKind, WritebackCounts]:
        """Plan against ``current`` and execute in full batches, confirming what succeeded."""
        counts: dict[ObjectKind, WritebackCounts] = {}
        for obj in OBJECTS:
            updates = plan(doc, specs, connector.name, obj, self.current(obj))
            counts[obj] = execute(connector, obj, updates, self._confirmer(obj))
        return counts

    def _confirmer(
        self, obj: ObjectKind
    ) -> Callable[[Sequence[FieldUpdate], Sequence[WriteOutcome]], None]:
        def confirm(batch: Sequence[FieldUpdate], outcomes: Sequence[WriteOutcome]) -> None:
            ok = {o.record_id for o in outcomes if o.ok}
            for update in batch:
                if update.record_id in ok:
                    self.confirmed[obj].setdefault(update.record_id, {}).update(update.values)

        return confirm
