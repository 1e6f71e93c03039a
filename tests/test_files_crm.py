"""The plain-file CRM connector's own files: figures written and read back by their names."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from agent.core.contract import MetricsConfig, default_field_specs
from agent.core.ports import FieldUpdate
from agent.core.timeutil import parse_instant
from agent.sources.files import FilesCrm, FilesSurveys, written_file
from agent.sources.plainfiles import read_written
from agent.state.store import StateStore
from agent.sync.cycle import (
    compute_from_state,
    ingest_surveys,
    plan_writeback,
    run_writeback,
    sync_crm,
)

FIXTURE = Path(__file__).parent / "fixtures" / "three-accounts"
AS_OF = parse_instant("2025-06-01T12:00:00Z")


def _folder(tmp_path: Path) -> FilesCrm:
    (tmp_path / "accounts.csv").write_text("id,name,domain,revenue\nA1,Acme,acme.example,10\n")
    (tmp_path / "contacts.csv").write_text("id,account_id,email,name,title,tier\n")
    return FilesCrm(tmp_path)


def test_figures_read_back_under_the_names_they_were_written_with(tmp_path: Path) -> None:
    """Field names are configurable: a name with capitals or spaces must come back as is."""
    crm = _folder(tmp_path)
    crm.write("account", [FieldUpdate("A1", {"NPS": 12.3, "Health Score": 5})])
    [batch] = crm.read_accounts(None)
    assert batch.records[0].crm_values == {"NPS": "12.3", "Health Score": "5"}


def test_rewriting_a_figure_keeps_one_column_per_field(tmp_path: Path) -> None:
    crm = _folder(tmp_path)
    crm.write("account", [FieldUpdate("A1", {"NPS": 12.3})])
    crm.write("account", [FieldUpdate("A1", {"NPS": 15.0})])
    assert written_file(tmp_path, "account").read_text().splitlines() == ["id,NPS", "A1,15.0"]
    [batch] = crm.read_accounts(None)
    assert batch.records[0].crm_values == {"NPS": "15.0"}


def _age(path: Path, seconds: float = 60) -> None:
    """Set a file's times in the past, as for a file not written this very moment."""
    when = time.time() - seconds
    os.utime(path, (when, when))


def _quiet_folder(tmp_path: Path) -> Path:
    shutil.copytree(FIXTURE, tmp_path / "crm")
    folder = tmp_path / "crm"
    for path in folder.iterdir():
        _age(path)
    return folder


def _counting(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    from agent.sources import files, plainfiles

    calls = {"read": 0, "hash": 0}

    def counted(function):  # type: ignore[no-untyped-def]
        def wrapper(*args, **kwargs):  # type: ignore[no-untyped-def]
            calls["read"] += 1
            return function(*args, **kwargs)

        return wrapper

    for name in ("read_accounts", "read_contacts", "read_responses"):
        monkeypatch.setattr(plainfiles, name, counted(getattr(plainfiles, name)))
    real_hash = files._FileState._hash

    def hashing(self, path):  # type: ignore[no-untyped-def]
        if path.name not in self.hashes:
            calls["hash"] += 1
        return real_hash(self, path)

    monkeypatch.setattr(files._FileState, "_hash", hashing)
    return calls


def test_quiet_cycles_read_and_hash_nothing(
    tmp_path: Path, store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _quiet_folder(tmp_path)
    crm, surveys = FilesCrm(folder), FilesSurveys(folder, AS_OF)
    calls = _counting(monkeypatch)
    first = sync_crm(store, crm)
    ingest_surveys(store, [surveys])
    assert first["accounts_changed"] == 3
    assert calls["read"] > 0
    for _ in range(3):
        calls.update(read=0, hash=0)
        counts = sync_crm(store, crm)
        ingested, _ = ingest_surveys(store, [surveys])
        assert calls == {"read": 0, "hash": 0}
        assert counts["accounts_changed"] == counts["contacts_changed"] == 0
        assert ingested["responses_new"] == 0


def test_a_touched_file_is_hashed_not_read_and_a_changed_one_is_read(
    tmp_path: Path, store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _quiet_folder(tmp_path)
    crm = FilesCrm(folder)
    sync_crm(store, crm)
    calls = _counting(monkeypatch)
    _age(folder / "accounts.csv", 30)  # touched: other time, same content
    counts = sync_crm(store, crm)
    assert counts["accounts_changed"] == 0
    assert (calls["read"], calls["hash"]) == (0, 2)  # accounts.csv, for accounts and contacts
    calls.update(read=0, hash=0)
    assert sync_crm(store, crm)["accounts_changed"] == 0
    assert calls == {"read": 0, "hash": 0}  # the new time is remembered
    text = (folder / "accounts.csv").read_text(encoding="utf-8")
    (folder / "accounts.csv").write_text(text.replace("600000", "600001"), encoding="utf-8")
    _age(folder / "accounts.csv", 30)  # same size, same time: only the content differs
    counts = sync_crm(store, crm)
    assert (counts["accounts_read"], counts["accounts_changed"]) == (3, 1)  # A1 alone
    assert {a.id: a.revenue for a in store.load_accounts("files")}["A1"] == 600_001


def test_a_file_rewritten_within_the_same_clock_tick_is_still_seen(
    tmp_path: Path, store: StateStore
) -> None:
    folder = _quiet_folder(tmp_path)
    crm = FilesCrm(folder)
    path = folder / "accounts.csv"
    text = path.read_text(encoding="utf-8")
    path.write_text(text, encoding="utf-8")  # modified just now
    sync_crm(store, crm)
    stat = path.stat()
    path.write_text(text.replace("600000", "600001"), encoding="utf-8")
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size and time
    assert sync_crm(store, crm)["accounts_read"] == 3


def _bad_rows(folder: Path) -> None:
    with (folder / "responses.csv").open("a", encoding="utf-8") as handle:
        handle.write("bad-1,ann@acme.example,eleven,2025-05-01T00:00:00Z,,,,\n")
        handle.write("late-1,ann@acme.example,9,2025-06-03T00:00:00Z,,,,\n")
    _age(folder / "responses.csv")  # not written this very moment: its time is trusted


def test_an_unchanged_file_still_lists_its_rejected_records_without_being_read(
    tmp_path: Path, store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _quiet_folder(tmp_path)
    _bad_rows(folder)
    counts, first = ingest_surveys(store, [FilesSurveys(folder, AS_OF)])
    reasons = [(r.reason, r.value) for r in first]
    assert ("invalid_score", "eleven") in reasons
    assert ("future_submitted_at", "2025-06-03T00:00:00Z") in reasons
    assert counts["responses_rejected"] == len(first)
    calls = _counting(monkeypatch)
    version = store.input_version()
    for _ in range(2):  # a later cycle, and a restart (a new source over the same state)
        counts, again = ingest_surveys(store, [FilesSurveys(folder, AS_OF)])
        assert again == first
        assert counts["responses_rejected"] == counts["responses_new"] == 0  # none read now
        assert calls == {"read": 0, "hash": 0}
    assert store.input_version() == version  # nothing was written for them

    _age(folder / "responses.csv", 30)  # touched: hashed, not read, still listed
    assert ingest_surveys(store, [FilesSurveys(folder, AS_OF)])[1] == first
    assert (calls["read"], calls["hash"]) == (0, 1)


def test_an_answer_rejected_as_future_is_taken_once_its_time_has_come(
    tmp_path: Path, store: StateStore
) -> None:
    folder = _quiet_folder(tmp_path)
    _bad_rows(folder)
    _, before = ingest_surveys(store, [FilesSurveys(folder, AS_OF)])
    future = [r for r in before if r.reason == "future_submitted_at"]
    assert ingest_surveys(store, [FilesSurveys(folder, AS_OF)])[0]["responses_new"] == 0
    later = parse_instant("2025-06-04T00:00:00Z")
    counts, rejected = ingest_surveys(store, [FilesSurveys(folder, later)])
    assert counts["responses_new"] == len(future) > 0  # the file is read again, unchanged
    assert rejected == [r for r in before if r not in future]
    assert store.has_response("responses.csv", "late-1")


def _write_back(store: StateStore, crm: FilesCrm, folder: Path) -> int:
    """A cycle's steps up to the write-back; returns the records written."""
    sync_crm(store, crm)
    _, rejected = ingest_surveys(store, [FilesSurveys(folder, AS_OF)])
    computed = compute_from_state(store, crm.name, AS_OF, MetricsConfig(), rejected)
    plan = plan_writeback(store, crm, computed.document, default_field_specs())
    return run_writeback(store, crm, plan).written


def _planned(store: StateStore, crm: FilesCrm) -> int:
    computed = compute_from_state(store, crm.name, AS_OF, MetricsConfig())
    return plan_writeback(store, crm, computed.document, default_field_specs()).records


def test_the_agents_own_write_is_not_read_back(
    tmp_path: Path, store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _quiet_folder(tmp_path)
    crm = FilesCrm(folder)
    assert _write_back(store, crm, folder) > 0
    version = store.input_version()
    calls = _counting(monkeypatch)
    counts = sync_crm(store, crm)
    assert counts == dict.fromkeys(counts, 0)
    # written just now: the time is not trusted, the written files' hashes decide
    assert calls == {"read": 0, "hash": 2}
    assert store.input_version() == version  # the mirror was not replaced
    assert _planned(store, crm) == 0  # the confirmed writes stand in for the files
    for kind in ("account", "contact"):
        _age(written_file(folder, kind))
    sync_crm(store, crm)
    calls.update(read=0, hash=0)
    sync_crm(store, crm)
    assert calls == {"read": 0, "hash": 0}
    assert store.input_version() == version


def _written_back(tmp_path: Path, store: StateStore) -> tuple[Path, FilesCrm]:
    """A quiet folder after a cycle's write-back, and its CRM."""
    folder = _quiet_folder(tmp_path)
    crm = FilesCrm(folder)
    _write_back(store, crm, folder)
    return folder, crm


def test_a_changed_row_read_with_the_agents_own_figures_is_the_only_change(
    tmp_path: Path, store: StateStore
) -> None:
    folder, crm = _written_back(tmp_path, store)
    _edit(folder / "accounts.csv", "Beta GmbH", "Renamed")
    pages = list(crm.read_accounts(store.get_cursor("files", "account")))
    assert [page.own_values for page in pages] == [True]
    counts = sync_crm(store, crm)
    assert (counts["accounts_read"], counts["accounts_changed"]) == (3, 1)
    written = store.written_values("files", "account")
    held = {a.id: a for a in store.load_accounts("files")}  # the figures read back, stored
    assert all(set(values) <= set(held[rid].crm_values) for rid, values in written.items())
    assert _planned(store, crm) == 0
    assert [p.own_values for p in FilesCrm(folder).read_accounts(None)] == [False]


def test_a_person_typing_over_a_written_figure_is_read_and_written_again(
    tmp_path: Path, store: StateStore
) -> None:
    folder, crm = _written_back(tmp_path, store)
    path = written_file(folder, "account")
    _age(path)
    sync_crm(store, crm)  # the written file's time is trusted from here on
    text = path.read_text(encoding="utf-8")
    header = text.splitlines()[0].split(",")
    column = header.index("nps")
    rows = [line.split(",") for line in text.splitlines()[1:]]
    rows[0][column] = "99.0"
    path.write_text("\n".join(",".join(r) for r in [header, *rows]) + "\n", encoding="utf-8")
    _age(path, 30)
    assert sync_crm(store, crm)["accounts_read"] == 3
    assert _write_back(store, crm, folder) == 1
    assert read_written(path)[rows[0][0]]["nps"] != "99.0"
    assert _write_back(store, crm, folder) == 0


def test_one_figure_typed_over_after_a_write_back_is_the_only_change(
    tmp_path: Path, store: StateStore
) -> None:
    """The written file is no longer as the agent left it, so the CRM cannot say its
    values are the agent's own: each record is checked against the agent's last
    writes, and only the one typed over counts as changed."""
    folder, crm = _written_back(tmp_path, store)  # the mirror holds the values before
    path = written_file(folder, "account")
    text = path.read_text(encoding="utf-8")
    header = text.splitlines()[0].split(",")
    rows = [line.split(",") for line in text.splitlines()[1:]]
    rows[0][header.index("nps")] = "99.0"
    path.write_text("\n".join(",".join(r) for r in [header, *rows]) + "\n", encoding="utf-8")
    _age(path, 30)
    assert [p.own_values for p in crm.read_accounts(store.get_cursor("files", "account"))] == [
        False
    ]
    counts = sync_crm(store, crm, specs=default_field_specs())
    assert (counts["accounts_read"], counts["accounts_changed"]) == (3, 1)
    assert counts["accounts_echoed"] == 2
    assert _write_back(store, crm, folder) == 1


def _write_after(store: StateStore, crm: FilesCrm, folder: Path, edit: Path) -> None:
    """A write-back planned from a sync, with ``edit`` changed between the two."""
    sync_crm(store, crm)
    _, rejected = ingest_surveys(store, [FilesSurveys(folder, AS_OF)])
    computed = compute_from_state(store, crm.name, AS_OF, MetricsConfig(), rejected)
    plan = plan_writeback(store, crm, computed.document, default_field_specs())
    assert plan.records > 0
    text = edit.read_text(encoding="utf-8")
    edit.write_text(text.replace("600000", "600001").replace("kept", "edited"), encoding="utf-8")
    assert edit.read_text(encoding="utf-8") != text
    run_writeback(store, crm, plan)


def test_a_source_file_changed_before_the_write_is_still_read(
    tmp_path: Path, store: StateStore
) -> None:
    folder = _quiet_folder(tmp_path)
    crm = FilesCrm(folder)
    _write_after(store, crm, folder, folder / "accounts.csv")
    # written against the mirror as last read: the cursor does not pass the new file
    assert sync_crm(store, crm)["accounts_read"] == 3
    assert {a.id: a.revenue for a in store.load_accounts("files")}["A1"] == 600_001


def test_a_written_file_edited_before_the_write_is_still_read(
    tmp_path: Path, store: StateStore
) -> None:
    folder = _quiet_folder(tmp_path)
    path = written_file(folder, "account")
    path.write_text("id,note\nA1,kept\n", encoding="utf-8")  # a person's own column
    _age(path)
    crm = FilesCrm(folder)
    _write_after(store, crm, folder, path)  # the person edits it meanwhile
    assert read_written(path)["A1"]["note"] == "edited"  # the write keeps it
    assert sync_crm(store, crm)["accounts_read"] == 3  # and the next sync reads it
    assert {a.id: a.crm_values for a in store.load_accounts("files")}["A1"]["note"] == "edited"


def test_a_crash_between_the_write_and_its_record_costs_one_read(
    tmp_path: Path, store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _quiet_folder(tmp_path)
    crm = FilesCrm(folder)

    def killed(*_args: object) -> str:
        raise RuntimeError("killed after the rename")

    monkeypatch.setattr(crm, "cursor_after_write", killed)
    sync_crm(store, crm)
    read = store.get_cursor("files", "account")
    with pytest.raises(RuntimeError):
        _write_back(store, crm, folder)
    # The confirmations commit (in pieces) before the last transaction, the one that
    # moves the cursor past the write: the cursor stays where the read left it.
    assert store.written_values("files", "account")
    assert store.get_cursor("files", "account") == read
    monkeypatch.undo()
    counts = sync_crm(store, crm)
    assert counts["accounts_read"] == 3  # the folder is read again
    assert counts["accounts_changed"] == 3  # nothing vouches that they are the agent's own
    computed = compute_from_state(store, crm.name, AS_OF, MetricsConfig())
    plan = plan_writeback(store, crm, computed.document, default_field_specs())
    assert plan.updates["account"] == []  # and holds the accounts' figures already
    assert plan.updates["contact"]  # the contacts were never written


def _edit(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text(encoding="utf-8").replace(old, new), encoding="utf-8")
    _age(path)


def test_a_new_revenue_does_not_read_the_contacts_again(
    tmp_path: Path, store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _quiet_folder(tmp_path)
    with (folder / "accounts.csv").open("a", encoding="utf-8") as handle:
        handle.write("A9,Bad Revenue,bad.example,lots,,,\n")  # a rejected account
    with (folder / "contacts.csv").open("a", encoding="utf-8") as handle:
        handle.write("C90,A9,x@bad.example,X,CEO,\nC91,A1,,No Mail,CTO,\n")
    for path in folder.iterdir():
        _age(path)
    crm = FilesCrm(folder)
    sync_crm(store, crm)
    whole = crm.left_out()
    contacts = store.load_contacts("files")
    calls = _counting(monkeypatch)
    _edit(folder / "accounts.csv", "600000", "650000")  # a revenue: no contact depends on it
    counts = sync_crm(store, crm)
    assert (counts["accounts_read"], counts["contacts_read"]) == (3, 0)
    assert counts["accounts_changed"] == 1  # the one revenue
    assert calls["read"] == 1  # the accounts only
    assert {a.id: a.revenue for a in store.load_accounts("files")}["A1"] == 650_000
    assert store.load_contacts("files") == contacts
    assert crm.left_out() == whole

    restarted = FilesCrm(folder)  # a new process: what was left out comes from the cursors
    calls.update(read=0)
    cursors = {o: store.get_cursor("files", o) for o in ("account", "contact")}
    assert restarted.left_out(cursors) == whole
    assert calls["read"] == 0
    calls.update(read=0)
    _edit(folder / "accounts.csv", "650000", "660000")
    assert sync_crm(store, restarted)["contacts_changed"] == 0
    assert calls["read"] == 1  # the accounts: their read gives the key the contacts compare


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("A3,Gamma AG", "A4,Gamma AG"),  # an account id: its contacts no longer have one
        ("300000,,,Mid-Market", "much,,,Mid-Market"),  # rejected: its contacts are dropped
    ],
)
def test_a_change_to_which_accounts_exist_reads_the_contacts(
    tmp_path: Path, store: StateStore, old: str, new: str
) -> None:
    folder = _quiet_folder(tmp_path)
    crm = FilesCrm(folder)
    sync_crm(store, crm)
    _edit(folder / "accounts.csv", old, new)
    counts = sync_crm(store, crm)
    assert counts["contacts_read"] > 0
    fresh = FilesCrm(folder)
    for _ in fresh.read_contacts(None):
        pass
    for _ in fresh.read_accounts(None):
        pass
    assert crm.left_out() == fresh.left_out()
    assert {c.id for c in store.load_contacts("files")} == {
        c.id for b in FilesCrm(folder).read_contacts(None) for c in b.records
    }


def test_a_cursor_of_the_older_kind_reads_the_files_for_what_they_left_out(
    tmp_path: Path, store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _quiet_folder(tmp_path)
    crm = FilesCrm(folder)
    sync_crm(store, crm)
    whole = crm.left_out()
    old = {
        o: json.dumps({"files": json.loads(str(store.get_cursor("files", o)))["files"]})
        for o in ("account", "contact")
    }
    calls = _counting(monkeypatch)
    assert FilesCrm(folder).left_out(old) == whole
    assert calls["read"] > 0


def test_contacts_read_alone_compare_the_key_of_the_accounts_file_as_it_is(
    tmp_path: Path, store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = _quiet_folder(tmp_path)
    sync_crm(store, FilesCrm(folder))
    cursor = store.get_cursor("files", "contact")
    _edit(folder / "accounts.csv", "600000", "650000")
    calls = _counting(monkeypatch)
    pages = list(FilesCrm(folder).read_contacts(cursor))  # no read of the accounts before
    assert [len(p.records) for p in pages] == [0]
    assert calls["read"] == 1  # accounts.csv, for its key; contacts.csv is not read
    assert FilesCrm.contents(pages[0].cursor) != FilesCrm.contents(cursor)  # the new file
