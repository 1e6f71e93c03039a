"""A write-back in a new process compares only what moved since the settlement the last
write-back that ran to its end stored, and writes exactly what comparing every record
would write.

A new process has no base of its own (``agent.sync.written_base``): each case here
forgets it before the write-back, as a restart does, so the stored settlement decides.
Real agent, plain-file CRM, real state database (SQLite file, PostgreSQL).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.core.ports import FieldUpdate
from agent.service.jobs import JOBS
from agent.service.process import AgentProcess
from agent.service.runtime import Runtime
from agent.sources.files import written_file
from agent.state import pieces
from agent.state.tx import StateTx
from agent.sync.cycle import WritebackStream
from tests.service.agentkit import RULES, agent_settings
from tests.service.test_written_base import (
    PORTFOLIO,
    Plan,
    _answer,
    _folder,
    _full_plan,
    _records,
    _rewrite,
    agent,
    random_changes_write_as_comparing_all,
    refusing,
)

__all__ = ["agent"]  # the fixture, shared


def _restarted(rt: Runtime) -> Plan:
    """Read the CRM and the answers, forget the process's base (as a new process has
    none), plan over every record, then run the write-back."""
    for job in ("crm_sync", "survey_ingest"):
        JOBS[job](rt)
    rt.written_base.forget()
    whole = _full_plan(rt)
    counts = JOBS["writeback"](rt)
    assert _full_plan(rt) == {}, "the write-back left a record to write"
    return whole, counts


@pytest.fixture
def settled(agent: AgentProcess) -> Iterator[Runtime]:
    """The agent after a write-back that ran to its end: the settlement stored."""
    rt = agent.runtime
    _restarted(rt)
    return rt  # type: ignore[return-value]


def test_a_quiet_restart_compares_nothing(settled: Runtime) -> None:
    whole, counts = _restarted(settled)
    assert whole == {}
    assert counts["compared_records"] == 0


def test_a_new_answer_after_a_restart_compares_its_account_and_contacts(settled: Runtime) -> None:
    _answer(_folder(settled), "late-1", "p1@acct2.example", 0)
    whole, counts = _restarted(settled)
    assert whole, "the answer moves its account's figures"
    assert counts["written"] == len(whole)
    assert 0 < counts["compared_records"] <= 1 + PORTFOLIO.contacts_per_account


def test_a_value_typed_over_is_written_again_after_a_restart(settled: Runtime) -> None:
    path = written_file(_folder(settled), "contact")

    def type_over(rows: list[dict[str, str]]) -> None:
        row = next(r for r in rows if r["id"] == "C3-1")
        field = next(k for k, v in row.items() if k != "id" and v not in ("", None))
        row[field] = "typed over"

    _rewrite(path, type_over)
    whole, counts = _restarted(settled)
    assert set(whole) == {"C3-1"}
    assert counts["written"] == 1


def test_a_write_made_after_the_settlement_is_compared_again(settled: Runtime) -> None:
    """Another write-back (a replica, or this process with its own base) wrote a value
    the settlement never saw: the record is compared and set back to its figure, even
    though its planned value is the settled one."""
    with settled.store.transaction() as tx:
        tx.record_written("files", "account", [FieldUpdate("A5", {"health_score": 1})])
    assert "A5" in _full_plan(settled)
    whole, counts = _restarted(settled)
    assert set(whole) == {"A5"}
    assert counts["written"] == 1
    assert counts["compared_records"] == 1


def test_a_refused_write_is_compared_again_after_a_restart(
    settled: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    _answer(_folder(settled), "late-2", "p0@acct4.example", 10)
    inner = settled.crm.write
    monkeypatch.setattr(settled.crm, "write", refusing(inner, "A4"))  # type: ignore[arg-type]
    for job in ("crm_sync", "survey_ingest"):
        JOBS[job](settled)
    settled.written_base.forget()
    assert JOBS["writeback"](settled)["write_failed"] == 1
    monkeypatch.setattr(settled.crm, "write", inner)
    whole, counts = _restarted(settled)
    assert set(whole) == {"A4"}
    assert counts["written"] == 1
    assert counts["compared_records"] == 1


def test_other_field_mappings_compare_every_record(settled: Runtime) -> None:
    specs = settled.settings.fields.specs()
    doc, records = settled.computed().document, settled.records()
    fewer = [s for s in specs if s.logical != "nps"]
    stream = WritebackStream(settled.store, settled.crm, doc, fewer, records, settling=True)
    stream.whole()
    assert stream.compared == _records(settled)
    same = WritebackStream(settled.store, settled.crm, doc, specs, records, settling=True)
    same.whole()
    assert same.compared == 0


def test_random_changes_after_restarts_write_what_comparing_every_record_writes(
    settled: Runtime,
) -> None:
    kinds = ["answer", "revenue", "typed", "contact", "written", "quiet"]
    random_changes_write_as_comparing_all(settled, 20261208, 10, kinds, _restarted)


def test_run_once_twice_compares_only_what_moved(tmp_path: Path) -> None:
    """Two ``run --once`` processes: the second's write-back, after one new answer,
    compares that answer's account and its contacts, not the portfolio."""
    settings = agent_settings(tmp_path)
    config = tmp_path / "ax-agent.yaml"
    config.write_text(
        f'crm: files\nfiles:\n  path: "{settings.files.path}"\n'
        f'state_url: "{settings.state_url}"\nrules_dir: "{RULES}"\nlog:\n  format: json\n',
        encoding="utf-8",
    )
    runner = CliRunner()
    first = runner.invoke(app, ["run", "--once", "--config", str(config)])
    assert first.exit_code == 0, first.output
    assert '"compared_records"' in first.output
    _answer(Path(settings.files.path), "late-9", "p1@acct2.example", 0)  # type: ignore[arg-type]
    second = runner.invoke(app, ["run", "--once", "--config", str(config)])
    assert second.exit_code == 0, second.output
    done = [
        json.loads(line)
        for line in second.output.splitlines()
        if line.startswith("{") and '"job": "writeback"' in line and '"job_done"' in line
    ]
    assert done, second.output[-2000:]
    assert 0 < done[-1]["compared_records"] <= 1 + PORTFOLIO.contacts_per_account + 1


def test_a_settlement_cut_short_leaves_what_the_next_write_back_needs(
    settled: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The digests commit a piece at a time and the head last: a settlement that stops
    part-way (a crash, a lost lease) leaves the next write-back writing exactly what
    comparing every record writes."""
    monkeypatch.setattr(pieces, "PIECE_ROWS", 5)
    before = settled.store.written_settlement("files", "contact")
    assert before is not None
    _answer(_folder(settled), "late-3", "p2@acct3.example", 0)
    settled.full_compute = True  # as ``--full``: every record compared and settled anew
    stored = StateTx.store_settled
    calls: list[int] = []

    def failing(self: StateTx, crm: str, obj: str, digests: list[tuple[str, str]]) -> None:
        calls.append(len(digests))
        if len(calls) == 3:
            raise RuntimeError("the process stops here")
        stored(self, crm, obj, digests)  # type: ignore[arg-type]

    monkeypatch.setattr(StateTx, "store_settled", failing)
    for job in ("crm_sync", "survey_ingest"):
        JOBS[job](settled)
    settled.written_base.forget()
    with pytest.raises(RuntimeError, match="stops here"):
        JOBS["writeback"](settled)
    assert calls == [5, 3, 5]  # the 8 accounts settled; the contacts stopped part-way
    accounts = settled.store.written_settlement("files", "account")
    assert accounts is not None
    assert accounts.read_from > before.read_from
    # the contacts keep the older head, their digests cleared and one piece stored anew
    assert settled.store.written_settlement("files", "contact") == before
    monkeypatch.setattr(StateTx, "store_settled", stored)
    settled.full_compute = False
    _answer(_folder(settled), "late-4", "p1@acct3.example", 10)
    whole, counts = _restarted(settled)
    assert counts.get("written", 0) == len(whole)
    whole, counts = _restarted(settled)  # settled in full now: nothing moved
    assert (whole, counts["compared_records"]) == ({}, 0)


def test_the_crm_reading_back_the_agents_own_values_is_no_change(settled: Runtime) -> None:
    """One account's name changes in accounts.csv after the settlement: the files CRM
    reads the whole file again, with every account's figures as the agent wrote them to
    ax_accounts.csv. Only the renamed account counts as changed and is compared; the
    others get the values they now read back, and the CRM holds exactly those."""

    def rename(rows: list[dict[str, str]]) -> None:
        next(r for r in rows if r["id"] == "A3")["name"] = "Renamed Ltd"

    _rewrite(_folder(settled) / "accounts.csv", rename)
    counts = JOBS["crm_sync"](settled)
    assert (counts["accounts_read"], counts["accounts_changed"]) == (PORTFOLIO.accounts, 1)
    accounts = {a.id: a for a in settled.store.load_accounts("files")}
    written = settled.store.written_values("files", "account")
    assert all(accounts[rid].crm_values for rid in written)  # read back, and stored
    whole, counts = _restarted(settled)
    assert whole == {}
    assert counts["compared_records"] == 1


def test_a_person_editing_the_written_file_changes_only_the_account_edited(
    settled: Runtime,
) -> None:
    """The same rename, and a person's edit of ax_accounts.csv: the CRM no longer
    vouches that the values differ only by the agent's writes, so each account's
    values are checked against the agent's last writes. The edited one and the renamed
    one count as changed, and the edit is set back."""
    folder = _folder(settled)

    def rename(rows: list[dict[str, str]]) -> None:
        next(r for r in rows if r["id"] == "A3")["name"] = "Renamed Ltd"

    def type_over(rows: list[dict[str, str]]) -> None:
        row = next(r for r in rows if r["id"] == "A5")
        field = next(k for k, v in row.items() if k != "id" and v not in ("", None))
        row[field] = "typed over"

    _rewrite(folder / "accounts.csv", rename)
    _rewrite(written_file(folder, "account"), type_over)
    counts = JOBS["crm_sync"](settled)
    assert counts["accounts_changed"] == 2
    # the others come back with the figures the agent wrote since the mirror read them
    assert counts["accounts_echoed"] == PORTFOLIO.accounts - 2
    whole, counts = _restarted(settled)
    assert set(whole) == {"A5"}
    assert counts["written"] == 1
    assert counts["compared_records"] == 2


def test_a_crm_that_lost_the_agents_figures_is_written_again(settled: Runtime) -> None:
    """The written file goes (a person restored the folder from before the write-back)
    and one account is renamed: the read brings every other account as the mirror held
    it before the write. That is no change of the record, but the CRM no longer holds
    what the agent wrote: every account is compared and written again."""
    folder = _folder(settled)

    def rename(rows: list[dict[str, str]]) -> None:
        next(r for r in rows if r["id"] == "A3")["name"] = "Renamed Ltd"

    written_file(folder, "account").unlink()
    _rewrite(folder / "accounts.csv", rename)
    whole, counts = _restarted(settled)
    assert set(whole) == {f"A{i}" for i in range(1, PORTFOLIO.accounts + 1)}
    assert counts["written"] == PORTFOLIO.accounts
