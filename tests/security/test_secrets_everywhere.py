"""No command shows a secret, even when a vendor (or a proxy) echoes credentials back.

Every configured secret is set; every vendor is a loopback server that answers each
request with an error whose body holds the request's headers, path and body. Each
command is run as a user runs it (a subprocess of the real console entry point), and
its output, its logs and the state database are searched for every secret in raw,
URL-encoded, JSON-escaped and base64 form.
"""

from __future__ import annotations

import base64
import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest

from tests.service.loopback import LoopbackServer, Request

SECRETS = {
    "AX_HUBSPOT__ACCESS_TOKEN": 'pat-na1-hub/spot+tok"en=42',
    "AX_SALESFORCE__SESSION_ID": "00Dsf!session/id+tok=99",
    "AX_SALESFORCE__PASSWORD": "sf-pass/w+rd&x=1",
    "AX_SALESFORCE__SECURITY_TOKEN": "sf-security+tok/en",
    "AX_SLACK__BOT_TOKEN": "xoxb-slack/bot+token-77",
    "AX_SLACK__SIGNING_SECRET": "slack-signing/secret+55",
    "AX_WEBHOOK__SECRET": "webhook-hmac/secret+33",
}
INVALID_RULES = "rules:\n  - id: broken\n    scope: account\n    when: account.nope\n"


def _forms(secret: str) -> set[str]:
    raw = secret.encode()
    return {
        secret,
        quote(secret, safe=""),
        quote_plus(secret),
        json.dumps(secret)[1:-1],
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode(),
    }


def _echo(request: Request) -> tuple[int, dict[str, str], bytes]:
    """Every credential the request carried, echoed back in an error body (as a proxy might)."""
    headers = "; ".join(f"{k}: {v}" for k, v in request.headers.items())
    auth = request.headers.get("Authorization", "")
    echoed = (
        f"bad auth {auth} | {base64.b64encode(auth.encode()).decode()} | {request.path} | "
        f"{headers} | {request.body.decode('utf-8', 'replace')}"
    )
    body = {"status": "error", "message": echoed, "ok": False, "error": echoed}
    return 401, {"Content-Type": "application/json"}, json.dumps(body).encode()


@pytest.fixture
def vendor() -> Iterator[LoopbackServer]:
    server = LoopbackServer(_echo)
    yield server
    server.close()


def _env(tmp_path: Path, vendor: LoopbackServer, crm: str) -> dict[str, str]:
    import os  # only here: the child's environment

    env = {k: v for k, v in os.environ.items() if not k.startswith("AX_")}
    env.update(SECRETS)
    env.update(
        {
            "AX_CRM": crm,
            "AX_STATE_URL": f"sqlite:///{tmp_path / 'state.db'}",
            "AX_RULES_DIR": str(tmp_path / "rules"),
            "AX_HUBSPOT__BASE_URL": vendor.url,
            "AX_HUBSPOT__RETRY_ATTEMPTS": "1",
            "AX_SALESFORCE__INSTANCE_URL": vendor.url,
            "AX_SALESFORCE__USERNAME": "admin@acme.example",
            "AX_SLACK__BASE_URL": vendor.url + "/api/",
            "AX_SLACK__MAX_RETRIES": "0",
            "AX_LOG__FORMAT": "json",
            "AX_LOG__LEVEL": "debug",
            "AX_FILES__PATH": str(tmp_path / "crm"),
        }
    )
    return env


COMMANDS = [
    ("hubspot", ["crm", "check", "hubspot"]),
    ("hubspot", ["crm", "provision", "hubspot"]),
    ("salesforce", ["crm", "check", "salesforce"]),
    ("salesforce", ["crm", "provision", "salesforce"]),
    ("hubspot", ["run", "--once"]),
    ("salesforce", ["run", "--once"]),
    ("hubspot", ["rules", "validate"]),
    ("hubspot", ["alerts", "list"]),
    ("hubspot", ["state", "show"]),
]


def test_no_command_output_log_or_state_row_holds_a_secret(
    tmp_path: Path, vendor: LoopbackServer
) -> None:
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "rules.yaml").write_text(INVALID_RULES, encoding="utf-8")
    seen: list[str] = []
    for crm, args in COMMANDS:
        result = subprocess.run(
            [sys.executable, "-c", "from agent.cli import main; main()", *args],
            env=_env(tmp_path, vendor, crm),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        seen.append(f"$ {' '.join(args)}\n{result.stdout}\n{result.stderr}")
    state = sqlite3.connect(tmp_path / "state.db")
    try:
        seen.append("\n".join(state.iterdump()))
    finally:
        state.close()
    everything = "\n".join(seen)
    # the vendors were reached and their echo shown (masked): the test is not vacuous
    assert "bad auth Bearer [REDACTED]" in everything
    assert "[REDACTED]" in everything
    for name, secret in SECRETS.items():
        for form in _forms(secret):
            assert form not in everything, f"{name} shown as {form!r}"
