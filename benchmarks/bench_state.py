"""Bulk throughput of the state store on SQLite and PostgreSQL.

Adds 1,000,000 survey responses and mirrors 500,000 CRM records (50,000 accounts and
450,000 contacts) through the public StateStore API, then re-adds the responses (all
exact repeats) and loads everything back. Prints seconds per step; the last line is
JSON. PostgreSQL comes from --postgres-url or AX_TEST_POSTGRES_URL (a scratch schema
is created and dropped); it is skipped, and said so, when no server answers.

    python benchmarks/bench_state.py [--responses N] [--accounts N] [--contacts N]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from agent.core.models import Account, Contact, Response
from agent.state.store import StateStore

T = TypeVar("T")
DEFAULT_PG = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
START = datetime(2024, 1, 1, tzinfo=UTC)


def make_responses(n: int, seed: int = 7) -> list[Response]:
    rng = random.Random(seed)
    drivers = ["Support", "Product", "Price", "Onboarding", None]
    return [
        Response(
            response_id=f"r{i:08d}",
            email=f"user{rng.randrange(n)}@customer{rng.randrange(50_000)}.com",
            score=rng.randrange(11),
            submitted_at=START + timedelta(seconds=rng.randrange(365 * 86_400)),
            driver=rng.choice(drivers),
            comment="ok" if rng.random() < 0.2 else None,
            source="bench.csv",
        )
        for i in range(n)
    ]


def make_accounts(n: int, seed: int = 11) -> list[Account]:
    rng = random.Random(seed)
    return [
        Account(
            id=f"001{i:08d}",
            name=f"Customer {i}",
            domains=(f"customer{i}.com",),
            revenue=round(rng.lognormvariate(11, 1.5), 2),
            attributes={"segment": rng.choice(["SMB", "Mid", "Enterprise"])},
            crm_values={"AX_NPS__c": rng.randrange(-100, 101)},
        )
        for i in range(n)
    ]


def make_contacts(n: int, accounts: int, seed: int = 13) -> list[Contact]:
    rng = random.Random(seed)
    titles = ["Engineer", "Director of IT", "CFO", "Support Lead", "Analyst"]
    return [
        Contact(
            id=f"003{i:08d}",
            account_id=f"001{rng.randrange(accounts):08d}",
            email=f"user{i}@customer{i % accounts}.com",
            name=f"Contact {i}",
            title=rng.choice(titles),
        )
        for i in range(n)
    ]


def timed(label: str, figures: dict[str, float], fn: Callable[[], T]) -> T:
    started = time.perf_counter()
    result = fn()
    figures[label] = round(time.perf_counter() - started, 2)
    print(f"  {label:<28} {figures[label]:>8.2f} s", flush=True)
    return result


def run(
    url: str, responses: list[Response], accounts: list[Account], contacts: list[Contact]
) -> dict[str, float]:
    figures: dict[str, float] = {}
    with StateStore.open(url) as store:
        added = timed("add_responses", figures, lambda: store.add_responses(responses))
        assert len(added.added) == len(responses)
        again = timed("add_responses_repeat", figures, lambda: store.add_responses(responses))
        assert again.duplicates == len(responses)
        timed(
            "replace_all_accounts", figures, lambda: store.replace_all("bench", "account", accounts)
        )
        timed(
            "replace_all_contacts", figures, lambda: store.replace_all("bench", "contact", contacts)
        )
        loaded = timed("load_responses", figures, store.load_responses)
        assert len(loaded) == len(responses)
        timed("load_accounts", figures, lambda: store.load_accounts("bench"))
        found = timed("load_contacts", figures, lambda: store.load_contacts("bench"))
        assert len(found) == len(contacts)
    figures["total"] = round(sum(figures.values()), 2)
    return figures


@contextmanager
def sqlite_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="ax-bench-") as folder:
        yield f"sqlite:///{Path(folder) / 'state.db'}"


@contextmanager
def postgres_url(base: str) -> Iterator[str | None]:
    admin = create_engine(base, poolclass=NullPool, connect_args={"connect_timeout": 3})
    schema = f"ax_bench_{uuid.uuid4().hex[:8]}"
    try:
        with admin.begin() as conn:
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    except Exception as exc:  # no server: report and go on with SQLite only
        print(f"PostgreSQL skipped: {str(exc).splitlines()[0]}")
        yield None
        return
    try:
        url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--responses", type=int, default=1_000_000)
    parser.add_argument("--accounts", type=int, default=50_000)
    parser.add_argument("--contacts", type=int, default=450_000)
    parser.add_argument(
        "--postgres-url", default=os.environ.get("AX_TEST_POSTGRES_URL", DEFAULT_PG)
    )
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()

    started = time.perf_counter()
    responses = make_responses(args.responses)
    accounts = make_accounts(args.accounts)
    contacts = make_contacts(args.contacts, args.accounts)
    print(f"generated data in {time.perf_counter() - started:.1f} s")

    results: dict[str, object] = {
        "responses": args.responses,
        "mirror_records": args.accounts + args.contacts,
    }
    print("sqlite:")
    with sqlite_url() as url:
        results["sqlite"] = run(url, responses, accounts, contacts)
    if not args.skip_postgres:
        with postgres_url(args.postgres_url) as pg:
            if pg is not None:
                print("postgresql:")
                results["postgresql"] = run(pg, responses, accounts, contacts)
    print(json.dumps(results))


if __name__ == "__main__":
    main()
