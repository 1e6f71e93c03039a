"""History survives a crash mid-cycle: no duplicate row, no lost change.

A real ``ax-agent run --once`` is killed with SIGKILL at random points of its cycle,
between runs new answers arrive, and a last run finishes. Then every account's stored
rows must differ from one row to the next (no duplicate), its newest row must hold the
figures of the last cycle (no gap: no change was lost), and every portfolio point is
unique. An in-process test makes the failure land before the portfolio point, which
commits last.
"""

from __future__ import annotations

import csv
import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path

import pytest

from agent.core.contract import MetricsConfig
from agent.core.history import account_figures, digest
from agent.sources.folder import compute_folder
from agent.state import history as history_module
from agent.state.history import HistoryRepo
from agent.state.store import StateStore
from tests.core_builders import account, contact, response
from tests.service.portfolio import Portfolio

pytestmark = pytest.mark.slow


def _config(tmp_path: Path, folder: Path) -> Path:
    config = tmp_path / "ax.yaml"
    config.write_text(
        f"crm: files\nfiles:\n  path: {folder}\nstate_url: sqlite:///{tmp_path / 'state.db'}\n"
        f"rules_dir: {Path(__file__).resolve().parents[2] / 'rules'}\n",
        encoding="utf-8",
    )
    return config


def _start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AX_")}
    with log.open("ab") as handle:
        return subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from agent.cli import main; main()",
                "run",
                "--once",
                "--config",
                str(config),
            ],
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=config.parent,
        )


def _more_answers(folder: Path, wave: int, rng: random.Random, accounts: int) -> None:
    """A wave of new answers from random contacts: figures of some accounts change."""
    when = datetime.now(UTC) - timedelta(days=5)
    with (folder / "responses.csv").open("a", newline="", encoding="utf-8") as handle:
        out = csv.writer(handle)
        for n in range(accounts // 3):
            i, j = rng.randint(1, accounts), rng.randint(0, 2)
            out.writerow(
                [
                    f"w{wave}-{n}",
                    f"p{j}@acct{i}.example",
                    rng.randint(0, 10),
                    when.isoformat(timespec="seconds"),
                    "Support",
                    "",
                ]
            )


def test_kill_9_mid_cycle_leaves_no_duplicate_and_no_gap(tmp_path: Path) -> None:
    portfolio = Portfolio(accounts=300)
    folder = portfolio.write_folder(tmp_path / "crm")
    config = _config(tmp_path, folder)
    log = tmp_path / "agent.log"
    rng = random.Random(20261206)
    started = time.monotonic()
    assert _start(config, log).wait(180) == 0, log.read_text()[-2000:]
    clean = time.monotonic() - started
    killed = 0
    for wave in range(5):
        _more_answers(folder, wave, rng, portfolio.accounts)
        proc = _start(config, log)
        time.sleep(rng.uniform(0.2, 1.0) * clean)
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            killed += 1
        proc.wait(60)
    assert killed >= 3
    assert _start(config, log).wait(180) == 0, log.read_text()[-2000:]
    with StateStore.open(f"sqlite:///{tmp_path / 'state.db'}") as store:
        repo = HistoryRepo(store)
        points = repo.portfolio("files")
        last = points[-1][0]
        assert len({at for at, _ in points}) == len(points)
        rows = repo.accounts("files")
        for account_id, history in rows.items():
            digests = [digest(figures) for _, figures in history]
            assert all(a != b for a, b in pairwise(digests)), account_id
        document = compute_folder(folder, as_of=last, config=MetricsConfig()).document
        in_force = repo.accounts_at("files", last)
        for metrics in document.accounts:
            assert digest(in_force[metrics.id].figures) == digest(account_figures(metrics))
        # every wave changed figures, and each change is there (nothing was lost)
        assert max(len(h) for h in rows.values()) >= 2


def test_a_failure_before_the_portfolio_point_leaves_the_point_to_complete(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent.core.compute import compute_document

    now = datetime(2025, 6, 1, tzinfo=UTC)
    doc = compute_document(
        [account("A", 10, domains=("a.com",)), account("B", 5, domains=("b.com",))],
        [contact("a", "A", "x@a.com"), contact("b", "B", "y@b.com")],
        [response("1", "x@a.com", 9, at=now - timedelta(days=1))],
        as_of=now,
    )
    with StateStore.open(sqlite_url) as store:
        repo = HistoryRepo(store)

        def crash(*_args: object) -> None:
            raise KeyboardInterrupt  # as abrupt as it gets inside the process

        monkeypatch.setattr(history_module, "_add_portfolio", crash)
        with pytest.raises(KeyboardInterrupt):
            repo.record("files", doc)
        # The account rows committed in their piece; the point is not complete.
        assert sorted(repo.accounts("files")) == ["A", "B"]
        assert not repo.has_point("files", now)
        monkeypatch.undo()
        recorded = repo.record("files", doc)
        assert (recorded.accounts, recorded.portfolio) == (0, 1)
        assert repo.has_point("files", now)
        assert repo.record("files", doc).accounts == 0
