"""The cycle steps over a real state store (SQLite and PostgreSQL) and the plain-file CRM."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import pytest

from agent.core.contract import FieldSpec, MetricsConfig, ObjectKind, default_field_specs
from agent.core.ports import FieldProblem, FieldUpdate, WriteOutcome
from agent.core.timeutil import parse_instant
from agent.sources.files import FilesCrm, FilesSurveys
from agent.sources.plainfiles import read_written
from agent.state.store import StateStore
from agent.sync.cycle import (
    FieldsNotReadyError,
    check_fields,
    compute_from_state,
    ingest_surveys,
    plan_writeback,
    run_writeback,
    sync_crm,
)

FIXTURE = Path(__file__).parent / "fixtures" / "three-accounts"
AS_OF = parse_instant("2025-06-01T12:00:00Z")
SPECS = default_field_specs()


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    target = tmp_path / "crm"
    shutil.copytree(FIXTURE, target)
    return target


def _cycle(store: StateStore, crm: FilesCrm, folder: Path) -> tuple[int, int]:
    sync_crm(store, crm)
    _, rejected = ingest_surveys(store, [FilesSurveys(folder, AS_OF)])
    computed = compute_from_state(store, crm.name, AS_OF, MetricsConfig(), rejected)
    plan = plan_writeback(store, crm, computed.document, SPECS)
    counts = run_writeback(store, crm, plan)
    return plan.records, counts.written


def test_state_cycle_reproduces_the_folder_figures(store: StateStore, folder: Path) -> None:
    crm = FilesCrm(folder)
    sync_crm(store, crm)
    counts, rejected = ingest_surveys(store, [FilesSurveys(folder, AS_OF)])
    assert counts["responses_rejected"] == len(rejected) == 10
    doc = compute_from_state(store, crm.name, AS_OF, MetricsConfig(), rejected).document
    by_id = {a.id: a for a in doc.accounts}
    assert by_id["A1"].nps == 0.0
    assert by_id["A2"].upsell_candidate is True
    assert doc.portfolio.revenue_coverage == pytest.approx(0.7)


def test_second_cycle_with_nothing_changed_writes_nothing(store: StateStore, folder: Path) -> None:
    crm = FilesCrm(folder)
    planned, written = _cycle(store, crm, folder)
    assert planned == written > 0
    assert (folder / "ax_accounts.csv").is_file()
    assert _cycle(store, crm, folder) == (0, 0)


def test_a_new_response_writes_only_what_it_changes(store: StateStore, folder: Path) -> None:
    crm = FilesCrm(folder)
    _cycle(store, crm, folder)
    with (folder / "responses.csv").open("a", encoding="utf-8") as handle:
        handle.write("r40,hal@shared.example,9,2025-05-31T00:00:00Z,Support,,,\n")
    sync_crm(store, crm)
    _, rejected = ingest_surveys(store, [FilesSurveys(folder, AS_OF)])
    computed = compute_from_state(store, crm.name, AS_OF, MetricsConfig(), rejected)
    plan = plan_writeback(store, crm, computed.document, SPECS)
    changed_accounts = {u.record_id for u in plan.updates["account"]}
    assert changed_accounts == {"A3"}  # hal is A3's contact; the others did not change
    assert {u.record_id for u in plan.updates["contact"]} == {"C8"}


def test_a_deleted_account_drops_out_of_the_figures(store: StateStore, folder: Path) -> None:
    crm = FilesCrm(folder)
    sync_crm(store, crm)
    lines = (folder / "accounts.csv").read_text().splitlines(keepends=True)
    (folder / "accounts.csv").write_text(
        "".join(line for line in lines if not line.startswith("A3,"))
    )
    counts = sync_crm(store, crm)
    assert counts["accounts_deleted"] == 1
    assert {a.id for a in store.load_accounts("files")} == {"A1", "A2"}


class _Refusing(FilesCrm):
    """The plain-file CRM, refusing some records the way a CRM does (per-record errors)."""

    def __init__(self, folder: Path, refuse: set[str]) -> None:
        super().__init__(folder)
        self.refuse = refuse
        self.max_write_batch = 2

    def write(self, obj: ObjectKind, updates: Sequence[FieldUpdate]) -> list[WriteOutcome]:
        accepted = [u for u in updates if u.record_id not in self.refuse]
        super().write(obj, accepted)
        return [
            WriteOutcome(u.record_id, False, "UNABLE_TO_LOCK_ROW", "locked")
            if u.record_id in self.refuse
            else WriteOutcome(u.record_id, True)
            for u in updates
        ]


def test_refused_records_are_recorded_and_retried_next_cycle(
    store: StateStore, folder: Path
) -> None:
    crm = _Refusing(folder, refuse={"A1"})
    _cycle(store, crm, folder)
    failures = store.failed_records("files", "account")
    assert failures["A1"].code == "UNABLE_TO_LOCK_ROW"
    assert "A1" not in store.written_values("files", "account")
    crm.refuse = set()
    planned, written = _cycle(store, crm, folder)
    assert planned == written == 1  # only the record that failed is sent again
    assert store.failed_records("files", "account") == {}
    assert _cycle(store, crm, folder) == (0, 0)


class _MissingField(FilesCrm):
    def check_fields(self, specs: Sequence[FieldSpec]) -> list[FieldProblem]:
        return [
            FieldProblem("account", "AX_NPS__c", "does not exist", "run `ax-agent crm provision x`")
        ]


def test_missing_fields_stop_the_write_back_naming_each_and_the_fix(folder: Path) -> None:
    with pytest.raises(FieldsNotReadyError) as err:
        check_fields(_MissingField(folder), SPECS)
    assert "account field AX_NPS__c: does not exist" in str(err.value)
    assert "ax-agent crm provision x" in str(err.value)
    check_fields(FilesCrm(folder), SPECS)  # the agent's own files always take every field


def test_a_dry_run_plan_prints_each_record_and_field(store: StateStore, folder: Path) -> None:
    crm = FilesCrm(folder)
    sync_crm(store, crm)
    _, rejected = ingest_surveys(store, [FilesSurveys(folder, AS_OF)])
    computed = compute_from_state(store, crm.name, AS_OF, MetricsConfig(), rejected)
    plan = plan_writeback(store, crm, computed.document, SPECS)
    lines = list(plan.lines(crm.name))
    assert "A1 nps (empty) → 0.0" in lines
    assert "A1 tier_misaligned (empty) → true" in lines
    assert not any(line.startswith("A1 tiers_missing ") for line in lines)  # nothing to clear
    assert (
        lines[-1]
        == f"files: {len(lines) - 1} field(s) of {plan.records} record(s) would be written"
    )
    assert not (folder / "ax_accounts.csv").exists()  # planning writes nothing


def test_a_value_edited_in_the_crm_is_written_again(store: StateStore, folder: Path) -> None:
    crm = FilesCrm(folder)
    _cycle(store, crm, folder)
    written = folder / "ax_accounts.csv"
    text = written.read_text()
    header = text.splitlines()[0].split(",")
    nps_col = header.index("nps")
    rows = [line.split(",") for line in text.splitlines()[1:]]
    a1 = next(r for r in rows if r[0] == "A1")
    assert a1[nps_col] == "0.0"
    a1[nps_col] = "99.0"  # someone typed over the agent's figure
    written.write_text("\n".join([",".join(header), *(",".join(r) for r in rows)]) + "\n")
    planned, _ = _cycle(store, crm, folder)
    assert planned == 1
    assert read_written(written)["A1"]["nps"] == "0.0"
    assert _cycle(store, crm, folder) == (0, 0)


def test_confirmed_writes_stand_in_until_the_next_read(store: StateStore, folder: Path) -> None:
    """Write-back twice without a sync in between: the second one plans nothing."""
    crm = FilesCrm(folder)
    sync_crm(store, crm)
    _, rejected = ingest_surveys(store, [FilesSurveys(folder, AS_OF)])
    computed = compute_from_state(store, crm.name, AS_OF, MetricsConfig(), rejected)
    run_writeback(store, crm, plan_writeback(store, crm, computed.document, SPECS))
    assert plan_writeback(store, crm, computed.document, SPECS).records == 0
