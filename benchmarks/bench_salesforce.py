"""One Salesforce cycle at scale against an in-process fake org, counting API calls.

Seeds 50,000 accounts and 500,000 contacts (the agent's fields provisioned), then runs
what a cycle does with Salesforce: describe Account and Contact, read both in full,
and write back the changed records in full batches. The fake sits at the HTTP layer
(a requests transport adapter), so the real client, paging and Composite packing are
measured. The figure that matters is counted calls made vs the lower bound

    ceil(ceil(accounts / 2000) / 5) + ceil(ceil(contacts / 2000) / 5)
                                     counted query calls (five pages per Composite call)
  + ceil(changed records / 1000)     counted update calls

(target: equal). A second cycle, ten minutes later, reads the agent's own writes back
and must make zero update calls. Three quiet cycles follow, ten minutes apart, with
nothing changed: each must make at most 2 counted query calls (one per object). The
last line printed is JSON.

    python benchmarks/bench_salesforce.py [--accounts N] [--contacts N] [--changed-share X]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import random
import resource
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import requests
import structlog

from agent.config.settings import SalesforceSettings
from agent.core.batching import chunked
from agent.core.contract import FieldSpec, ObjectKind, default_field_specs
from agent.core.ports import CrmConnector, FieldUpdate, FieldValue
from connectors.salesforce import SalesforceConnector, from_settings
from tests.salesforce.fake import FakeOrg, FakeSalesforce, add_agent_fields

QUERY_PAGE = 2000
PAGES_PER_CALL = 5
QUIET_CYCLES = 3
COUNTED_UPDATE = 1000
_TITLES = ("CEO", "VP Sales", "Head of IT", "Support Agent", "Engineer", "Director Finance", "")


def seed(
    fake: FakeSalesforce, accounts: int, contacts: int, rng: random.Random
) -> tuple[list[str], list[str]]:
    """Records created over 30 days, so their SystemModstamps spread as in a real org."""
    org = fake.org
    step = 30 * 86_400 / max(1, accounts + contacts)
    owners = [org.insert("User", {"Email": f"rep{i}@vendor.example"}) for i in range(50)]
    account_ids = [
        _later(org, step).insert(
            "Account",
            {
                "Name": f"Account {i}",
                "Website": f"www.account{i}.example",
                "AnnualRevenue": float(rng.randrange(10_000, 5_000_000)),
                "OwnerId": owners[i % len(owners)],
            },
        )
        for i in range(accounts)
    ]
    contact_ids = [
        _later(org, step).insert(
            "Contact",
            {
                "AccountId": account_ids[i % accounts],
                "Email": f"c{i}@account{i % accounts}.example",
                "Name": f"Contact {i}",
                "Title": _TITLES[i % len(_TITLES)],
            },
        )
        for i in range(contacts)
    ]
    return account_ids, contact_ids


def _later(org: FakeOrg, seconds: float) -> FakeOrg:
    org.tick(seconds)
    return org


def connector_for(fake: FakeSalesforce) -> SalesforceConnector:
    http = requests.Session()
    http.mount("https://", fake.adapter())
    sf = SalesforceSettings(session_id="fake-session", instance_url=fake.instance_url)
    return from_settings(sf, http=http)


def read_all(connector: CrmConnector, cursors: dict[str, str | None]) -> dict[str, int]:
    """Read accounts and contacts from the given cursors; return records seen."""
    seen: Counter[str] = Counter()
    for obj, batches in (
        ("account", connector.read_accounts(cursors.get("account"))),
        ("contact", connector.read_contacts(cursors.get("contact"))),
    ):
        for batch in batches:
            seen[obj] += len(batch.records)
            cursors[obj] = batch.cursor or cursors.get(obj)
    return dict(seen)


def desired_values(
    specs: Sequence[FieldSpec],
    obj: ObjectKind,
    ids: Sequence[str],
    share: float,
    rng: random.Random,
) -> dict[str, dict[str, FieldValue]]:
    """New figures for ``share`` of the records (the ones whose metrics changed)."""
    chosen = rng.sample(list(ids), round(len(ids) * share))
    if obj == "account":
        nps, status = _names(specs, obj, "nps"), _names(specs, obj, "health_status")
        return {rid: {nps: round(rng.uniform(-100, 100), 1), status: "healthy"} for rid in chosen}
    tier = _names(specs, obj, "tier")
    return {rid: {tier: rng.choice(("executive", "management", "frontline"))} for rid in chosen}


def _names(specs: Iterable[FieldSpec], obj: ObjectKind, logical: str) -> str:
    return next(s.salesforce for s in specs if s.object == obj and s.logical == logical)


def write_changes(
    connector: CrmConnector,
    obj: ObjectKind,
    desired: dict[str, dict[str, FieldValue]],
    confirmed: dict[str, dict[str, FieldValue]],
) -> tuple[int, int]:
    """Plan only values that differ from confirmed ones, write in full batches."""
    updates = [
        FieldUpdate(rid, changed)
        for rid, values in desired.items()
        if (changed := {k: v for k, v in values.items() if confirmed.get(rid, {}).get(k) != v})
    ]
    failed = 0
    for batch in chunked(updates, connector.max_write_batch):
        for update, outcome in zip(batch, connector.write(obj, batch), strict=True):
            if outcome.ok:
                confirmed.setdefault(update.record_id, {}).update(update.values)
            else:
                failed += 1
    return len(updates), failed


def cycle(
    connector: CrmConnector,
    cursors: dict[str, str | None],
    desired: dict[ObjectKind, dict[str, dict[str, FieldValue]]],
    confirmed: dict[ObjectKind, dict[str, dict[str, FieldValue]]],
) -> dict[str, object]:
    """Read (from the cursors), then write what changed; the calls this made, by kind."""
    counter = connector.client.counter  # type: ignore[attr-defined]
    before = Counter(counter.by_kind)
    before_subs = Counter(counter.subrequests)
    started = time.perf_counter()
    seen = read_all(connector, cursors)
    written = {
        obj: write_changes(connector, obj, values, confirmed[obj])
        for obj, values in desired.items()
    }
    return {
        "subrequests": dict(Counter(counter.subrequests) - before_subs),
        "calls": dict(Counter(counter.by_kind) - before),
        "read": seen,
        "written": {obj: n for obj, (n, _) in written.items()},
        "failed": sum(f for _, f in written.values()),
        "seconds": round(time.perf_counter() - started, 2),
    }


def lower_bound(accounts: int, contacts: int, written: dict[str, int]) -> tuple[int, int, int]:
    """(counted query calls, counted update calls by the issue's formula, the same per object)."""
    pages = sum(math.ceil(math.ceil(n / QUERY_PAGE) / PAGES_PER_CALL) for n in (accounts, contacts))
    changed = sum(written.values())
    per_object = sum(math.ceil(n / COUNTED_UPDATE) for n in written.values())
    return pages, math.ceil(changed / COUNTED_UPDATE), per_object


def report(
    args: argparse.Namespace,
    first: dict[str, Any],
    second: dict[str, Any],
    quiet: list[dict[str, Any]],
) -> None:
    calls: dict[str, int] = first["calls"]
    pages, updates, per_object = lower_bound(args.accounts, args.contacts, first["written"])
    made = calls.get("query", 0) + calls.get("update", 0)
    bound = pages + updates
    print(f"read {first['read']}; wrote {first['written']} (failed {first['failed']})")
    print(f"{'calls by kind':<30}{'made':>8}{'lower bound':>14}")
    query_pages = first["subrequests"].get("query", 0)
    print(f"{'  counted query calls':<30}{calls.get('query', 0):>8}{pages:>14}")
    print(f"{'    query subrequests in them':<30}{query_pages:>8}{'-':>14}")
    print(f"{'  counted update calls':<30}{calls.get('update', 0):>8}{updates:>14}")
    print(f"{'  describe (start-up check)':<30}{calls.get('describe', 0):>8}{'-':>14}")
    print(f"{'  in the bound':<30}{made:>8}{bound:>14}   {'EQUAL' if made == bound else 'ABOVE'}")
    print(f"first cycle {first['seconds']} s")
    print(f"second cycle, nothing changed: {second['calls']} in {second['seconds']} s")
    print(f"  read back (the agent's own writes): {second['read']}")
    quiet_queries = [q["calls"].get("query", 0) for q in quiet]
    for n, q in enumerate(quiet, 1):
        print(f"quiet cycle {n}: {q['calls']} (subrequests {q['subrequests']}), read {q['read']}")
    print(f"quiet cycles: counted query calls {quiet_queries} (target <= 2 each)")
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    result = {
        "accounts": args.accounts,
        "contacts": args.contacts,
        "changed": sum(first["written"].values()),
        "calls": calls,
        "query_calls": calls.get("query", 0),
        "query_subrequests": query_pages,
        "update_calls": calls.get("update", 0),
        "lower_bound": bound,
        "lower_bound_per_object_writes": pages + per_object,
        "calls_in_bound": made,
        "equal": made == bound,
        "second_cycle_calls": second["calls"],
        "second_cycle_updates": sum(second["written"].values()),
        "quiet_cycle_query_calls": quiet_queries,
        "quiet_cycle_calls": [q["calls"] for q in quiet],
        "first_cycle_seconds": first["seconds"],
        "max_rss_mb": round(rss_mb),
    }
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--accounts", type=int, default=50_000)
    parser.add_argument("--contacts", type=int, default=500_000)
    parser.add_argument(
        "--account-share", type=float, default=0.10, help="share of accounts changed"
    )
    parser.add_argument(
        "--contact-share", type=float, default=0.04, help="share of contacts changed"
    )
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    rng = random.Random(args.seed)
    specs = default_field_specs()

    started = time.perf_counter()
    fake = FakeSalesforce(daily_limit=10_000_000)
    add_agent_fields(fake, specs)
    account_ids, contact_ids = seed(fake, args.accounts, args.contacts, rng)
    seconds = time.perf_counter() - started
    print(f"seeded {args.accounts:,} accounts, {args.contacts:,} contacts in {seconds:.1f} s")

    fake.org.tick(3600)  # the cycle runs an hour after the last change
    connector = connector_for(fake)
    problems = connector.check_fields(specs)
    print(f"field problems: {len(problems)}")
    desired: dict[ObjectKind, dict[str, dict[str, FieldValue]]] = {
        "account": desired_values(specs, "account", account_ids, args.account_share, rng),
        "contact": desired_values(specs, "contact", contact_ids, args.contact_share, rng),
    }
    confirmed: dict[ObjectKind, dict[str, dict[str, FieldValue]]] = {"account": {}, "contact": {}}
    cursors: dict[str, str | None] = {}
    before = dict(connector.client.counter.by_kind)
    first = cycle(connector, cursors, desired, confirmed)
    first["calls"] = {**{k: v for k, v in before.items() if k == "describe"}, **first["calls"]}
    fake.org.tick(600)  # cycles run every ten minutes; the cursor overlap is five
    second = cycle(connector, cursors, desired, confirmed)
    quiet = []
    for _ in range(QUIET_CYCLES):
        fake.org.tick(600)
        quiet.append(cycle(connector, cursors, desired, confirmed))
    report(args, first, second, quiet)


if __name__ == "__main__":
    main()
