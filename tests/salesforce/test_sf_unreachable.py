"""Salesforce out of reach: login and every call fail at once, naming host, port and
what happened; nothing is retried that a retry cannot fix."""

from __future__ import annotations

import socket
from typing import Any

import pytest
import requests

from connectors.common.network import UnreachableError
from connectors.common.retry import RetryPolicy
from connectors.salesforce import from_settings
from connectors.salesforce.settings import SalesforceSettings


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _policy(waits: list[float]) -> RetryPolicy:
    return RetryPolicy(attempts=6, initial=0.01, maximum=0.01, sleep=waits.append)


def test_login_to_a_host_whose_name_does_not_resolve_fails_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = socket.getaddrinfo

    def resolve(host: Any, *args: Any, **kwargs: Any) -> Any:
        if str(host).endswith(".salesforce.com"):
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    sf = SalesforceSettings(
        username="int@acme.example", password="pw", security_token="tok", domain="acme.my"
    )
    waits: list[float] = []
    connector = from_settings(sf, policy=_policy(waits))
    with pytest.raises(UnreachableError) as err:
        list(connector.read_accounts(None))
    assert str(err.value) == (
        "salesforce: cannot reach acme.my.salesforce.com:443: name not resolved (password login)"
    )
    assert waits == []


def test_a_refused_instance_fails_the_call_at_once(tmp_path: Any) -> None:
    port = _closed_port()
    sf = SalesforceSettings(session_id="00D-session", instance_url=f"http://127.0.0.1:{port}")
    waits: list[float] = []
    connector = from_settings(sf, policy=_policy(waits))
    with pytest.raises(UnreachableError, match=rf"127\.0\.0\.1:{port}: connection refused"):
        connector.check_fields([])
    assert waits == []
    assert connector.client.counter.by_kind["describe"] == 1  # one attempt, counted


def test_calls_the_sdk_makes_without_a_timeout_still_time_out() -> None:
    """Login and Metadata calls go through simple-salesforce, which sets no timeout."""
    from connectors.salesforce.factory import _TimedSession

    with socket.socket() as silent:  # accepts connections, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        session = _TimedSession(read_timeout=0.3)
        with pytest.raises(requests.ReadTimeout):
            session.post(f"http://127.0.0.1:{port}/services/Soap/u/62.0", data="<login/>")
