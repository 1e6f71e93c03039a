"""``run --once`` against a CRM that refuses, forbids or is not there: one line per failed
job naming the cause, in JSON and console logs alike, and never a traceback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from tests.service.loopback import LoopbackServer, Request

# Error bodies as HubSpot documents them (status, message, correlationId, category).
UNAUTHORIZED = {
    "status": "error",
    "message": "Authentication credentials not found. This API supports OAuth 2.0 "
    "authentication and you can find more details at "
    "https://developers.hubspot.com/docs/methods/auth/oauth-overview",
    "correlationId": "8c1f1a4e-5b0e-4f3a-9f53-2f1d0c6f7a11",
    "category": "INVALID_AUTHENTICATION",
}
FORBIDDEN = {
    "status": "error",
    "message": "This app hasn't been granted all required scopes to make this call. "
    "Read more about required scopes here: https://developers.hubspot.com/scopes.",
    "correlationId": "1b7e0c55-3c5f-4a0b-8f8c-3c2b9b9d2e4f",
    "errors": [
        {
            "message": "One or more of the following scopes are required.",
            "context": {"requiredGranularScopes": ["crm.objects.companies.read"]},
        }
    ],
    "category": "MISSING_SCOPES",
}


_AX = (sys.executable, "-c", "from agent.cli import main; main()")


def _answering(status: int, body: dict[str, object]) -> LoopbackServer:
    def app(_: Request) -> tuple[int, dict[str, str], bytes]:
        return status, {"Content-Type": "application/json"}, json.dumps(body).encode()

    return LoopbackServer(app)


@pytest.fixture
def refused_url() -> str:
    with socket.socket() as s:  # a port that was free a moment ago: nothing listens there
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def _run_once(tmp_path: Path, base_url: str, log_format: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AX_")}
    env.update(
        {
            "AX_CRM": "hubspot",
            "AX_HUBSPOT__ACCESS_TOKEN": "pat-na1-not-a-real-token",
            "AX_HUBSPOT__BASE_URL": base_url,
            "AX_HUBSPOT__RETRY_ATTEMPTS": "1",
            "AX_STATE_URL": f"sqlite:///{tmp_path / f'{log_format}.db'}",
        }
    )
    return subprocess.run(
        [*_AX, "run", "--once", "--log-format", log_format],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def _assert_one_clear_line_per_failed_job(
    result: subprocess.CompletedProcess[str], log_format: str, cause: str
) -> None:
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert 'File "' not in result.stderr
    failed = [line for line in result.stderr.splitlines() if "job_failed" in line]
    assert failed, result.stderr
    for line in failed:
        assert cause in line
        if log_format == "json":
            event = json.loads(line)
            assert event["level"] == "error"
            assert "exception" not in event
            assert cause in event["error"]
    assert "failed jobs: crm_sync" in result.stderr


@pytest.mark.parametrize("log_format", ["json", "console"])
def test_a_refused_token_is_one_line_per_failed_job(tmp_path: Path, log_format: str) -> None:
    server = _answering(401, UNAUTHORIZED)
    try:
        result = _run_once(tmp_path, server.url, log_format)
    finally:
        server.close()
    _assert_one_clear_line_per_failed_job(result, log_format, "HTTP 401 INVALID_AUTHENTICATION")
    assert "hubspot.access_token" in result.stderr  # it says what to check


@pytest.mark.parametrize("log_format", ["json", "console"])
def test_missing_scopes_are_one_line_per_failed_job(tmp_path: Path, log_format: str) -> None:
    server = _answering(403, FORBIDDEN)
    try:
        result = _run_once(tmp_path, server.url, log_format)
    finally:
        server.close()
    _assert_one_clear_line_per_failed_job(result, log_format, "MISSING_SCOPES")


@pytest.mark.parametrize("log_format", ["json", "console"])
def test_an_unreachable_crm_is_one_line_per_failed_job(
    tmp_path: Path, refused_url: str, log_format: str
) -> None:
    result = _run_once(tmp_path, refused_url, log_format)
    _assert_one_clear_line_per_failed_job(result, log_format, "connection refused")
