"""A leader whose job never returns is ended: it steps down and exits with status 1.

The heartbeat renews the lease from its own thread, so that a long job never lets it
lapse. Left alone, it would renew it over a job stuck in a call for ever, and no
standby would take over. A job that runs past ``schedule.job_timeout_seconds`` now
ends the lease at once and the process (after the grace period).

The stuck call is real: the plain-file CRM's accounts file is a named pipe that no one
writes, so the CRM sync blocks in ``open``. The real command runs as a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.service.portfolio import Portfolio

pytestmark = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")


_COMMAND = [sys.executable, "-c", "from agent.cli import main; main()", "run"]


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("AX_")}


def _config(
    tmp_path: Path, state_url: str, *, lease: float = 3, grace: float = 1
) -> tuple[Path, Path]:
    folder = Portfolio().write_folder(tmp_path / "crm")
    config = tmp_path / "ax-agent.yaml"
    config.write_text(
        "crm: files\n"
        f"files:\n  path: {json.dumps(str(folder))}\n"
        f"state_url: {json.dumps(state_url)}\n"
        f"schedule:\n  job_timeout_seconds: 2\n  grace_seconds: {grace}\n"
        f"  lease_seconds: {lease}\n"
        "server:\n  enabled: false\n"
        "log:\n  format: json\n",
        encoding="utf-8",
    )
    return config, folder


def _run(
    config: Path, *args: str, timeout: float = 60
) -> tuple[int, list[dict[str, object]], float]:
    started = time.monotonic()
    done = subprocess.run(
        [*_COMMAND, "--config", str(config), *args],
        capture_output=True,
        env=_env(),
        cwd=config.parent,
        timeout=timeout,
        check=False,
    )
    events = []
    for line in done.stderr.decode(errors="replace").splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    return done.returncode, events, time.monotonic() - started


def _stuck_accounts(folder: Path) -> Path:
    real = folder / "accounts.real"
    (folder / "accounts.csv").rename(real)
    os.mkfifo(folder / "accounts.csv")
    return real


def _named(events: list[dict[str, object]], name: str) -> list[dict[str, object]]:
    return [e for e in events if e.get("event") == name]


@pytest.mark.parametrize("once", [True, False], ids=["run-once", "service"])
def test_a_stuck_job_ends_the_leader_with_status_1(
    tmp_path: Path, state_url: str, once: bool
) -> None:
    config, folder = _config(tmp_path, state_url)
    assert _run(config, "--once")[0] == 0  # a first cycle, then the CRM stops answering
    real = _stuck_accounts(folder)
    code, events, seconds = _run(config, *(["--once"] if once else []))
    assert code == 1
    assert seconds < 30
    [stuck] = _named(events, "job_stuck")
    assert stuck["job"] == "crm_sync"
    assert stuck["job_timeout_seconds"] == 2
    assert _named(events, "leader_stepping_down"), "the leader did not step down"
    # the next start leads and runs the whole cycle, the CRM answering again
    (folder / "accounts.csv").unlink()
    real.rename(folder / "accounts.csv")
    code, events, _ = _run(config, "--once")
    assert code == 0
    assert not _named(events, "job_stuck")


@pytest.mark.postgres
def test_a_standby_leads_while_the_stuck_leader_is_still_there(
    tmp_path: Path, postgres_url: str
) -> None:
    """With a ten-minute lease, another agent leads as soon as the stuck one steps down,
    though the stuck process is still alive (its grace period runs): the lease was
    ended and the lock let go, not left to run out with the process."""
    config, folder = _config(tmp_path, postgres_url, lease=600, grace=60)
    assert _run(config, "--once")[0] == 0
    real = _stuck_accounts(folder)
    log = tmp_path / "stuck.log"
    with log.open("wb") as out:
        stuck = subprocess.Popen(
            [*_COMMAND, "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=_env(),
            cwd=tmp_path,
        )
    try:
        deadline = time.monotonic() + 30
        while b'"job_stuck"' not in log.read_bytes():
            assert stuck.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        (folder / "accounts.csv").unlink()  # the stuck open() still waits on the pipe
        real.rename(folder / "accounts.csv")
        code, events, _ = _run(config, "--once")
        assert code == 0, [e for e in events if e.get("level") == "error"]
        assert stuck.poll() is None, "the stuck agent was gone already: nothing was shown"
    finally:
        stuck.kill()
        stuck.wait(10)
