"""The long-running agent's write-back compares only the records that may have moved
since its last write-back that ran to its end, and writes exactly what comparing
every record would write.

Real agent, plain-file CRM, real state database (SQLite file, PostgreSQL). After each
change, the plan over every record is made first (nothing sent); the write-back job
then runs, and must write those very records, leave a plan over every record empty,
and have compared fewer records than the portfolio holds when the change was small.
"""

from __future__ import annotations

import csv
import random
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.core.ports import FieldUpdate, WriteOutcome
from agent.service.jobs import JOBS
from agent.service.process import AgentProcess
from agent.service.runtime import Runtime
from agent.sources.files import written_file
from agent.state import schema
from agent.sync.cycle import WritebackStream
from agent.sync.written_base import WrittenOver
from tests.service.agentkit import RULES, agent_settings, leading_agent
from tests.service.portfolio import Portfolio

NOW = datetime.now(UTC).replace(microsecond=0)
PORTFOLIO = Portfolio(accounts=8, contacts_per_account=3)


@pytest.fixture
def agent(tmp_path: Path, state_url: str) -> Iterator[AgentProcess]:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules)
    PORTFOLIO.write_folder(tmp_path / "crm")
    settings = agent_settings(tmp_path, state_url=state_url, rules_dir=rules, keep_folder=True)
    with leading_agent(settings, NOW) as made:
        yield made


def _folder(rt: Runtime) -> Path:
    return Path(rt.settings.files.path)  # type: ignore[union-attr]


#: What a write-back step gives: the records comparing every record would write, and
#: the write-back job's counts.
Plan = tuple[dict[str, dict[str, object]], dict[str, int]]


def _records(rt: Runtime) -> int:
    accounts, contacts = rt.records()
    return len(accounts) + len(contacts)


def _full_plan(rt: Runtime) -> dict[str, dict[str, object]]:
    """Every record compared, as a new process would: record -> changed values."""
    computed = rt.computed()
    specs = rt.settings.fields.specs()
    plan = WritebackStream(rt.store, rt.crm, computed.document, specs, rt.records()).whole()
    return {u.record_id: dict(u.values) for ups in plan.updates.values() for u in ups}


def _read_and_write(rt: Runtime) -> Plan:
    """The CRM and the answers read, the plan over every record, then the write-back."""
    for job in ("crm_sync", "survey_ingest"):
        JOBS[job](rt)
    whole = _full_plan(rt)
    counts = JOBS["writeback"](rt)
    assert _full_plan(rt) == {}, "the write-back left a record to write"
    return whole, counts


def _rewrite(path: Path, change: object) -> None:
    with path.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    change(rows)  # type: ignore[operator]
    with path.open("w", encoding="utf-8", newline="") as handle:
        out = csv.DictWriter(handle, fieldnames=list(rows[0]))
        out.writeheader()
        out.writerows(rows)


def _answer(folder: Path, response_id: str, email: str, score: int) -> None:
    when = (NOW - timedelta(days=2)).isoformat(timespec="seconds")
    with (folder / "responses.csv").open("a", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerow([response_id, email, score, when, "Support", "late"])


def change_at_random(
    rt: Runtime, rng: random.Random, step: int, kind: str, emails: list[str]
) -> None:
    """One random change of ``kind``: a new answer, a revenue, a value typed over in the
    CRM's written files, a new contact, a write recorded by another writer ("written"),
    or none ("quiet")."""
    folder = _folder(rt)
    if kind == "answer":
        _answer(folder, f"rand-{step}", rng.choice(emails), rng.randint(0, 10))
    elif kind == "revenue":
        account = f"A{rng.randint(1, PORTFOLIO.accounts)}"

        def revenue(rows: list[dict[str, str]]) -> None:
            row = next(r for r in rows if r["id"] == account)
            row["revenue"] = str(float(row["revenue"]) * 2 + 1)

        _rewrite(folder / "accounts.csv", revenue)
    elif kind == "typed":
        obj = rng.choice(["account", "contact"])
        path = written_file(folder, obj)  # type: ignore[arg-type]

        def typed(rows: list[dict[str, str]]) -> None:
            row = rng.choice(rows)
            field = rng.choice([k for k in row if k != "id"])
            row[field] = rng.choice(["", "7", "typed over"])

        _rewrite(path, typed)
    elif kind == "contact":
        account = rng.randint(1, PORTFOLIO.accounts)
        email = f"new{step}@acct{account}.example"
        with (folder / "contacts.csv").open("a", encoding="utf-8", newline="") as handle:
            csv.writer(handle).writerow(
                [f"N{step}", f"A{account}", email, f"New {step}", "Engineer", ""]
            )
        emails.append(email)
    elif kind == "written":
        account = f"A{rng.randint(1, PORTFOLIO.accounts)}"
        update = FieldUpdate(account, {"health_score": rng.randint(0, 100)})
        with rt.store.transaction() as tx:
            tx.record_written("files", "account", [update])


def random_changes_write_as_comparing_all(
    rt: Runtime, seed: int, steps: int, kinds: list[str], write: Callable[[Runtime], Plan]
) -> None:
    """``steps`` random changes (``change_at_random``), each followed by ``write`` (the
    records to write by comparing every record, and the write-back's counts): each
    write-back writes exactly those, and at least one compared fewer than every record."""
    rng = random.Random(seed)
    emails = [row["email"] for row in PORTFOLIO.contact_rows()]
    small = 0
    for step in range(steps):
        kind = rng.choice(kinds)
        change_at_random(rt, rng, step, kind, emails)
        whole, counts = write(rt)
        assert counts.get("written", 0) == len(whole), (step, kind)
        if counts["compared_records"] < _records(rt):
            small += 1
    assert small > 0, "no step compared fewer records than the portfolio holds"


def refusing(
    inner: Callable[[str, list[FieldUpdate]], list[WriteOutcome]], record_id: str
) -> Callable[[str, list[FieldUpdate]], list[WriteOutcome]]:
    """A CRM write that refuses ``record_id`` and sends the rest through ``inner``."""

    def write(obj: str, batch: list[FieldUpdate]) -> list[WriteOutcome]:
        kept = [u for u in batch if u.record_id != record_id]
        outcomes = inner(obj, kept) if kept else []
        refused = [
            WriteOutcome(u.record_id, False, "REFUSED", "no") for u in batch if u not in kept
        ]
        return [*outcomes, *refused]

    return write


def test_a_quiet_write_back_compares_nothing(agent: AgentProcess) -> None:
    rt = agent.runtime
    whole, counts = _read_and_write(rt)
    assert whole == {}
    assert counts["compared_records"] == 0
    assert counts.get("written", 0) == 0


def test_a_read_record_the_document_does_not_hold_is_not_counted_compared(
    agent: AgentProcess,
) -> None:
    """A deletion a CRM reports is a record read, which the document no longer holds:
    nothing is compared for it, and the count says so."""
    rt = agent.runtime
    _read_and_write(rt)
    rt.written_base.changed("account", ["GONE-1"])
    _whole, counts = _read_and_write(rt)
    assert counts["compared_records"] == 0


def test_a_renamed_account_is_compared_alone_though_the_sync_reads_every_account(
    agent: AgentProcess,
) -> None:
    """accounts.csv changes in one row: the files CRM reads every account again, each
    with the figures the agent wrote. Only the renamed one changed: it is recomputed, and
    only it and its contacts are compared."""
    rt = agent.runtime
    _read_and_write(rt)

    def rename(rows: list[dict[str, str]]) -> None:
        next(r for r in rows if r["id"] == "A3")["name"] = "Renamed Ltd"

    _rewrite(_folder(rt) / "accounts.csv", rename)
    whole, counts = _read_and_write(rt)
    assert whole == {}
    assert counts["compared_records"] == 1 + PORTFOLIO.contacts_per_account


def test_a_crm_that_lost_the_agents_figures_gets_them_again(agent: AgentProcess) -> None:
    """ax_accounts.csv goes (a folder restored from before the write-back) and one
    account is renamed: every account reads as the mirror held it before the write,
    but the CRM no longer holds what the agent wrote, so each is compared and written."""
    rt = agent.runtime
    _read_and_write(rt)

    def rename(rows: list[dict[str, str]]) -> None:
        next(r for r in rows if r["id"] == "A3")["name"] = "Renamed Ltd"

    written_file(_folder(rt), "account").unlink()
    _rewrite(_folder(rt) / "accounts.csv", rename)
    whole, counts = _read_and_write(rt)
    assert set(whole) == {f"A{i}" for i in range(1, PORTFOLIO.accounts + 1)}
    assert counts["written"] == PORTFOLIO.accounts


def test_a_new_answer_compares_its_account_and_contacts_only(agent: AgentProcess) -> None:
    rt = agent.runtime
    _read_and_write(rt)  # settled
    _answer(_folder(rt), "late-1", "p1@acct2.example", 0)
    whole, counts = _read_and_write(rt)
    assert whole, "the answer moves its account's figures"
    assert {rid.split("-")[0].lstrip("C").lstrip("A") for rid in whole} == {"2"}
    assert counts["written"] == len(whole)
    # account A2 and its three contacts, not the portfolio
    assert 0 < counts["compared_records"] <= 1 + PORTFOLIO.contacts_per_account
    assert counts["compared_records"] < _records(rt)


def test_a_value_typed_over_in_the_crm_is_written_again(agent: AgentProcess) -> None:
    rt = agent.runtime
    _read_and_write(rt)
    path = written_file(_folder(rt), "account")

    def type_over(rows: list[dict[str, str]]) -> None:
        row = next(r for r in rows if r["id"] == "A3")
        field = next(k for k, v in row.items() if k != "id" and v not in ("", None))
        row[field] = "typed over"

    _rewrite(path, type_over)
    whole, counts = _read_and_write(rt)
    assert set(whole) == {"A3"}
    assert counts["written"] == 1


def test_a_refused_write_is_compared_again_next_time(
    agent: AgentProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    rt = agent.runtime
    _read_and_write(rt)
    _answer(_folder(rt), "late-2", "p0@acct4.example", 10)
    inner = rt.crm.write
    monkeypatch.setattr(rt.crm, "write", refusing(inner, "A4"))
    for job in ("crm_sync", "survey_ingest"):
        JOBS[job](rt)
    counts = JOBS["writeback"](rt)
    assert counts["write_failed"] == 1
    monkeypatch.setattr(rt.crm, "write", inner)
    assert "A4" in _full_plan(rt)
    counts = JOBS["writeback"](rt)  # nothing else moved: only the refused record is due
    assert counts["written"] == 1
    assert counts["compared_records"] == 1
    assert _full_plan(rt) == {}


def test_a_change_the_state_does_not_name_drops_the_base_for_the_stored_settlement(
    agent: AgentProcess,
) -> None:
    """The process's base goes; the settlement stored in the state names what to compare
    (``test_written_settled``), and without one every record is compared."""
    rt = agent.runtime
    _read_and_write(rt)
    rt.data_changed()  # e.g. another replica led meanwhile
    assert rt.written_base.take()("account", [], _over_of(rt)) is None
    _whole, counts = _read_and_write(rt)
    assert counts["compared_records"] == 0
    with rt.store.transaction() as tx:
        tx.connection.execute(schema.written_settled_heads.delete())
    rt.data_changed()
    _whole, counts = _read_and_write(rt)
    assert counts["compared_records"] == _records(rt)


def test_random_changes_write_what_comparing_every_record_writes(agent: AgentProcess) -> None:
    kinds = ["answer", "answer", "revenue", "typed", "contact", "quiet"]
    random_changes_write_as_comparing_all(agent.runtime, 20261207, 12, kinds, _read_and_write)


def test_a_full_reload_lets_go_of_the_last_write_backs_rows(agent: AgentProcess) -> None:
    """A reload makes every row anew: the base would only hold a whole document's rows
    beside the new ones, so it is dropped before the load, and every record compared."""
    rt = agent.runtime
    _read_and_write(rt)
    assert rt.figures is not None
    held = rt.written_base.take()
    assert held("account", [], _over_of(rt)) is not None  # a base was there
    _read_and_write(rt)  # settles a new base
    rt.figures.reset()  # e.g. more new answers than placing them is worth
    rt.computed()
    assert rt.written_base.take()("account", [], _over_of(rt)) is None


def _over_of(rt: Runtime) -> WrittenOver:
    return WrittenOver(tuple(rt.settings.fields.specs()), {}, None)
