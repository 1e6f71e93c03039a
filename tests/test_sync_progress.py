"""CRM sync progress: records read per object after every page, a live display on a
terminal and log lines every N pages otherwise; `run --once` shows it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from agent.cli.progress import sync_progress
from agent.core.contract import FieldSpec, ObjectKind
from agent.core.models import Account, Contact
from agent.core.ports import Batch, FieldProblem, FieldUpdate, WriteOutcome
from agent.state.store import StateStore
from agent.sync.cycle import sync_crm
from tests.service.portfolio import Portfolio


class _PagedCrm:
    """Three pages of accounts, one of contacts; the contacts' read can fail."""

    name = "paged"
    max_write_batch = 100

    def __init__(self, *, fail_contacts: bool = False) -> None:
        self.fail_contacts = fail_contacts

    def read_accounts(self, cursor: str | None) -> Iterator[Batch[Account]]:
        for page in range(3):
            ids = range(page * 2, page * 2 + 2)
            yield Batch(
                records=[Account(id=f"A{i}", name=f"A{i}", revenue=1.0) for i in ids],
                cursor=str(page),
            )

    def read_contacts(self, cursor: str | None) -> Iterator[Batch[Contact]]:
        yield Batch(records=[Contact(id="C1", account_id="A1", email="c@a1.example")])
        if self.fail_contacts:
            raise ConnectionError("gone")

    def check_fields(self, specs: Sequence[FieldSpec]) -> list[FieldProblem]:
        return []

    def write(self, obj: ObjectKind, updates: Sequence[FieldUpdate]) -> list[WriteOutcome]:
        return []


def test_sync_crm_tells_the_records_read_after_every_page(store: StateStore) -> None:
    told: list[tuple[str, int, int, bool]] = []
    sync_crm(store, _PagedCrm(), progress=lambda *seen: told.append(seen))
    assert told == [
        ("account", 2, 1, False),
        ("account", 4, 2, False),
        ("account", 6, 3, False),
        ("account", 6, 3, True),
        ("contact", 1, 1, False),
        ("contact", 1, 1, True),
    ]


def test_a_failing_read_still_ends_its_progress(store: StateStore) -> None:
    told: list[tuple[str, int, int, bool]] = []
    with pytest.raises(ConnectionError):
        sync_crm(store, _PagedCrm(fail_contacts=True), progress=lambda *seen: told.append(seen))
    assert told[-1] == ("contact", 1, 1, True)  # a live display is stopped, not left running


def test_without_a_terminal_progress_is_a_log_line_every_n_pages() -> None:
    progress = sync_progress(terminal=False, every_pages=2)
    with capture_logs() as logs:
        for page in range(1, 6):
            progress("account", page * 100, page, False)
        progress("account", 500, 5, True)
    lines = [(e["object"], e["records"], e["pages"], e["done"]) for e in logs]
    assert lines == [
        ("account", 200, 2, False),
        ("account", 400, 4, False),
        ("account", 500, 5, True),
    ]
    assert all(e["event"] == "crm_sync_progress" and e["per_second"] > 0 for e in logs)


def test_on_a_terminal_progress_is_a_live_display_that_ends_with_the_read() -> None:
    progress = sync_progress(terminal=True)
    with capture_logs() as logs:
        progress("account", 100, 1, False)
        assert progress.bar is not None  # type: ignore[attr-defined]
        assert progress.bar.live.is_started  # type: ignore[attr-defined]
        progress("account", 100, 1, True)
        assert progress.bar is None  # type: ignore[attr-defined]
    assert logs == []  # the display replaces the log lines


def test_run_once_logs_the_sync_progress_when_not_on_a_terminal(tmp_path: Path) -> None:
    folder = Portfolio().write_folder(tmp_path / "crm")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AX_")}
    env.update(
        {
            "AX_CRM": "files",
            "AX_FILES__PATH": str(folder),
            "AX_STATE_URL": f"sqlite:///{tmp_path / 'state.db'}",
            "AX_LOG__FORMAT": "json",
        }
    )
    result = subprocess.run(
        [sys.executable, "-c", "from agent.cli import main; main()", "run", "--once"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    events = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    ended = {e["object"]: e["records"] for e in events if e["event"] == "crm_sync_progress"}
    synced = next(e for e in events if e["event"] == "crm_synced")
    assert ended == {
        "account": synced["accounts_read"],
        "contact": synced["contacts_read"],
    }
    assert ended["account"] > 0
