"""One HubSpot cycle at scale against an in-process fake portal: calls made vs the bound.

A full read of N companies and M contacts (contacts' companies inline), then a write of
every changed record in batches of 100, against the fake portal served on a loopback
port in this process. The rate limiter runs on a fake clock, so the benchmark does not
wait the hours the real limit implies; the fake clock's elapsed time *is* that wait.

    python benchmarks/bench_hubspot.py [--companies 50000] [--contacts 500000]

Lower bound (calls): ceil(companies/100) + ceil(contacts/100) list calls
+ ceil(changed companies/100) + ceil(changed contacts/100) batch updates; the
connector also makes a fixed few (2 property reads, the owner list). Wall time is at
least 10 s x calls / burst.

Then, ten minutes later, an incremental cycle reads the agent's own writes back, and
three quiet cycles follow, ten minutes apart, with nothing changed: each must make at
most 2 searches (one per object) and no association reads. The last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import sys
import time
from collections import deque
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

sys.path.insert(
    0, str(Path(__file__).resolve().parents[1])
)  # the fake portal lives in tests/ (E402 is not selected)

from agent.core.batching import chunked  # after the path set-up above
from agent.core.contract import default_field_specs
from agent.core.ports import FieldUpdate, FieldValue
from connectors.hubspot import HubSpotConnector
from tests.hubspot.fakeportal import FakePortal
from tests.hubspot.fakeserve import serve_stdlib
from tests.hubspot.fakestate import Record, Store
from tests.hubspot.harness import FakeTime, build_connector, provision_all

CONTACT_BASE = 10_000_000
TITLES = ("CEO", "Head of Support", "Support Agent", "VP Sales", "Engineer", "", "Director IT")
BASE_MS = 1_767_225_600_000


class _Lazy(Mapping[str, Record]):
    """Records generated from their id on every access: a large portal in little memory.

    Written records are kept (``written``), so incremental reads see their new stamps.
    """

    def __init__(self, first: int, count: int, make: Any) -> None:
        self.first, self.count, self.make = first, count, make
        #: Records the agent wrote to, kept so that their new modification time is read.
        self.written: dict[str, Record] = {}

    def __getitem__(self, key: str) -> Record:
        if key in self.written:
            return self.written[key]
        number = int(key) if key.isdigit() else -1
        if not self.first <= number < self.first + self.count:
            raise KeyError(key)
        return self.make(number)

    def __iter__(self) -> Iterator[str]:
        return (str(i) for i in range(self.first, self.first + self.count))

    def __len__(self) -> int:
        return self.count


class _SyntheticStore(Store):
    def __init__(self, records: _Lazy) -> None:
        super().__init__()
        self.live = records  # type: ignore[assignment]  # a read-only mapping is all the routes need

    def ordered(self, archived: bool = False) -> Any:
        if archived:
            return []
        return range(self.live.first, self.live.first + self.live.count)  # type: ignore[attr-defined]


class SyntheticPortal(FakePortal):
    """A fake portal whose companies and contacts are generated, ten contacts per company."""

    def __init__(self, companies: int, contacts: int) -> None:
        super().__init__()
        self.requests = deque(maxlen=100)  # type: ignore[assignment]  # keep only the latest requests
        self.companies, self.contacts = companies, contacts
        self.stores["companies"] = _SyntheticStore(_Lazy(1, companies, self._company))
        self.stores["contacts"] = _SyntheticStore(_Lazy(CONTACT_BASE, contacts, self._contact))
        for owner in range(1, 51):
            self.add_owner(str(owner), f"rep{owner}@seller.example")

    def _company(self, number: int) -> Record:
        revenue = int(math.exp(8 + (number * 7919 % 1000) / 160))  # lognormal-ish spread
        stamp = BASE_MS + number
        props: dict[str, str | None] = {
            "name": f"Company {number}",
            "domain": f"c{number}.example",
            "annualrevenue": str(revenue),
            "hubspot_owner_id": str(number % 50 + 1),
            "createdate": "2025-01-01T00:00:00.000Z",
            "hs_lastmodifieddate": f"{stamp}",
        }
        return Record(str(number), props, BASE_MS, stamp)

    def _contact(self, number: int) -> Record:
        index = number - CONTACT_BASE
        company = index // 10 + 1
        props: dict[str, str | None] = {
            "email": f"p{index}@c{company}.example",
            "firstname": f"P{index}",
            "lastname": "Example",
            "jobtitle": TITLES[index % len(TITLES)] or None,
            "createdate": "2025-01-01T00:00:00.000Z",
            "lastmodifieddate": f"{BASE_MS + index}",
        }
        return Record(str(number), props, BASE_MS, BASE_MS + index)

    def _touch(self, object_type: str, record: Record) -> None:
        super()._touch(object_type, record)
        self.stores[object_type].live.written[record.id] = record  # type: ignore[attr-defined]

    def _inline(self, from_type: str, to_type: str, record_id: str) -> list[dict[str, str]]:
        if (from_type, to_type) != ("contacts", "companies"):
            return []
        company = str((int(record_id) - CONTACT_BASE) // 10 + 1)
        if int(company) > self.companies:
            return []
        return [
            {"id": company, "type": "contact_to_company"},
            {"id": company, "type": "contact_to_company_unlabeled"},
        ]


def _account_figures(account_id: str) -> dict[str, FieldValue]:
    score = float(int(account_id) % 101)
    return {
        "ax_health_score": score,
        "ax_health_status": "healthy" if score >= 70 else ("neutral" if score >= 40 else "at_risk"),
        "ax_nps": round(score * 2 - 100, 1),
        "ax_contact_coverage": float(int(account_id) % 11 * 10),
        "ax_tiers_covered": ("executive", "management"),
        "ax_at_risk": score < 40,
        "ax_respondents": int(account_id) % 7,
    }


def _read(connector: HubSpotConnector, obj: str, cursors: dict[str, str | None]) -> list[str]:
    """Ids read from the stored cursor of ``obj``; the cursor moves on."""
    ids: list[str] = []
    read = connector.read_accounts if obj == "account" else connector.read_contacts
    for batch in read(cursors.get(obj)):
        ids.extend(r.id for r in batch.records)
        cursors[obj] = batch.cursor or cursors.get(obj)
    return ids


def _incremental(connector: HubSpotConnector, cursors: dict[str, str | None]) -> dict[str, Any]:
    """One sync of both objects from the cursors: records read and calls made."""
    before = dict(connector.calls.by_kind)
    read = {obj: len(_read(connector, obj, cursors)) for obj in ("account", "contact")}
    calls = {
        k: n - before.get(k, 0) for k, n in connector.calls.by_kind.items() if n > before.get(k, 0)
    }
    return {
        "read": read,
        "calls": calls,
        "searches": sum(n for k, n in calls.items() if k.endswith(".search")),
        "association_reads": sum(n for k, n in calls.items() if k.startswith("associations.")),
    }


def _cycle(
    connector: HubSpotConnector,
    changed_companies: int,
    changed_contacts: int,
    cursors: dict[str, str | None],
) -> dict[str, int]:
    specs = default_field_specs()
    problems = connector.check_fields(specs)
    if problems:
        raise SystemExit(f"fields missing: {problems[:3]}")
    accounts = _read(connector, "account", cursors)
    contacts = _read(connector, "contact", cursors)
    written = 0
    account_updates = (FieldUpdate(i, _account_figures(i)) for i in accounts[:changed_companies])
    for batch in chunked(account_updates, connector.max_write_batch):
        written += sum(o.ok for o in connector.write("account", batch))
    contact_updates = (
        FieldUpdate(i, {"ax_tier": "frontline"}) for i in contacts[:changed_contacts]
    )
    for batch in chunked(contact_updates, connector.max_write_batch):
        written += sum(o.ok for o in connector.write("contact", batch))
    return {"accounts": len(accounts), "contacts": len(contacts), "written": written}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--companies", type=int, default=50_000)
    parser.add_argument("--contacts", type=int, default=500_000)
    parser.add_argument("--changed-companies", type=int, default=None, help="default: all")
    parser.add_argument("--changed-contacts", type=int, default=None, help="default: all")
    parser.add_argument("--burst", type=int, default=100, help="requests per 10 s")
    args = parser.parse_args()
    changed_companies = args.companies if args.changed_companies is None else args.changed_companies
    changed_contacts = args.contacts if args.changed_contacts is None else args.changed_contacts

    portal = SyntheticPortal(args.companies, args.contacts)
    provision_all(portal)
    server, url = serve_stdlib(portal)
    clock = FakeTime()
    connector = build_connector(portal, url, clock, burst_limit=args.burst, burst_window_s=10.0)

    started = time.perf_counter()
    cursors: dict[str, str | None] = {}
    counts = _cycle(connector, changed_companies, changed_contacts, cursors)
    elapsed = time.perf_counter() - started
    by_kind = dict(sorted(connector.calls.by_kind.items()))
    portal.tick(600_000)  # cycles run every ten minutes; the overlap is five
    read_back = _incremental(connector, cursors)
    quiet = []
    for _ in range(3):
        portal.tick(600_000)
        quiet.append(_incremental(connector, cursors))
    server.shutdown()

    reads = by_kind.get("companies.list", 0) + by_kind.get("contacts.list", 0)
    updates = by_kind.get("companies.update", 0) + by_kind.get("contacts.update", 0)
    bound_reads = math.ceil(args.companies / 100) + math.ceil(args.contacts / 100)
    bound_updates = math.ceil(changed_companies / 100) + math.ceil(changed_contacts / 100)
    total = sum(by_kind.values())  # the first cycle's
    fixed = total - reads - updates
    result = {
        "companies": args.companies,
        "contacts": args.contacts,
        "changed_companies": changed_companies,
        "changed_contacts": changed_contacts,
        "records_read": counts["accounts"] + counts["contacts"],
        "records_written": counts["written"],
        "calls_by_kind": by_kind,
        "read_calls": reads,
        "read_calls_bound": bound_reads,
        "update_calls": updates,
        "update_calls_bound": bound_updates,
        "fixed_calls": fixed,
        "calls_total": total,
        "bound_total": bound_reads + bound_updates,
        "limit_wall_s": round(clock.now, 1),
        "bound_wall_s": round(10.0 * (bound_reads + bound_updates) / args.burst, 1),
        "read_back_cycle": read_back,
        "quiet_cycle_searches": [q["searches"] for q in quiet],
        "quiet_cycle_association_reads": [q["association_reads"] for q in quiet],
        "quiet_cycle_calls": [q["calls"] for q in quiet],
        "contract_violations": len(portal.violations),
        "elapsed_s": round(elapsed, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    print(f"HubSpot cycle: {args.companies:,} companies, {args.contacts:,} contacts")
    for kind, count in by_kind.items():
        print(f"  {kind:<28} {count:>8,}")
    print(f"  reads   {reads:>8,}  (bound {bound_reads:,})")
    print(f"  updates {updates:>8,}  (bound {bound_updates:,})")
    print(f"  fixed   {fixed:>8,}  (property checks and the owner list)")
    print(
        f"  wall time the {args.burst}/10 s limit implies: {clock.now:,.0f} s"
        f" (bound {result['bound_wall_s']:,} s); this run took {elapsed:,.1f} s"
    )
    print(f"  next cycle reads the agent's writes back: {read_back['read']} ({read_back['calls']})")
    for n, q in enumerate(quiet, 1):
        print(
            f"  quiet cycle {n}: {q['searches']} searches, {q['association_reads']} association"
            f" reads (target <= 2, 0); all calls {q['calls']}"
        )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
