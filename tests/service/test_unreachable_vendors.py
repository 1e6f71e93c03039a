"""A vendor that cannot be reached: the command ends at once, names host and port and
what happened, retries nothing it cannot fix, and logs no traceback in any format.

Each test runs the real command line as a subprocess against a port nobody listens
on, or a host name that cannot resolve (``.invalid`` never does).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest


def _closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _agent(tmp_path: Path, *args: str, **settings: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AX_")}
    env.update(settings)
    return subprocess.run(
        [sys.executable, "-c", "from agent.cli import main; main()", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _hubspot(port: int, log_format: str = "json") -> dict[str, str]:
    return {
        "AX_CRM": "hubspot",
        "AX_HUBSPOT__ACCESS_TOKEN": "pat-na1-test-token",
        "AX_HUBSPOT__BASE_URL": f"http://127.0.0.1:{port}",
        "AX_LOG__FORMAT": log_format,
    }


def test_crm_check_hubspot_on_a_refused_port_names_host_port_and_refusal(tmp_path: Path) -> None:
    port = _closed_port()
    done = _agent(tmp_path, "crm", "check", "hubspot", **_hubspot(port))
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert f"cannot reach 127.0.0.1:{port}: connection refused" in output
    assert "NewConnectionError" not in output
    assert "vendor_call_retry" not in output  # a refused port is not retried
    assert "Traceback" not in output


def test_salesforce_on_a_host_that_does_not_resolve_says_so(tmp_path: Path) -> None:
    done = _agent(
        tmp_path,
        "crm",
        "check",
        "salesforce",
        AX_CRM="salesforce",
        AX_SALESFORCE__SESSION_ID="00D-fake-session",
        AX_SALESFORCE__INSTANCE_URL="https://no-such-org.invalid",
        AX_LOG__FORMAT="json",
    )
    output = done.stdout + done.stderr
    assert done.returncode != 0
    assert "cannot reach no-such-org.invalid:443: name not resolved" in output
    assert "vendor_call_retry" not in output
    assert "Traceback" not in output


@pytest.mark.parametrize("log_format", ["json", "console"])
def test_a_cycle_against_a_dead_crm_fails_its_sync_skips_write_back_and_logs_no_traceback(
    tmp_path: Path, log_format: str
) -> None:
    port = _closed_port()
    done = _agent(tmp_path, "run", "--once", **_hubspot(port, log_format))
    output = done.stdout + done.stderr
    assert "Traceback" not in output
    assert f"cannot reach 127.0.0.1:{port}: connection refused" in output
    assert "job_failed" in output
    assert "writeback_skipped" in output
    assert "failed jobs: crm_sync" in output
    assert "failed jobs: crm_sync, writeback" not in output
