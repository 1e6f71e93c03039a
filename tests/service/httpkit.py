"""Running the agent's HTTP app in-process for tests, and calling it."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from agent.config.service import ServerSettings, WebhookSettings
from agent.service.health import Health
from agent.service.http import AgentApp, HttpServer, WsgiApp
from agent.service.signing import sign
from agent.service.webhook import WebhookHandler


@contextmanager
def serving(health: Health, hook: WebhookHandler, slack: WsgiApp | None = None) -> Iterator[str]:
    server = HttpServer(
        AgentApp(health, hook, slack),
        ServerSettings(host="127.0.0.1", port=0),
        max_body_bytes=max(hook.settings.max_body_bytes, 1_000_000),
    )
    server.start()
    try:
        yield f"http://127.0.0.1:{server.port}"
    finally:
        server.stop()


def call(
    url: str,
    method: str = "GET",
    body: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, Any, dict[str, str]]:
    request = urllib.request.Request(url, data=body, method=method, headers=dict(headers or {}))
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            raw, status, got = response.read(), response.status, dict(response.headers)
    except urllib.error.HTTPError as exc:
        raw, status, got = exc.read(), exc.code, dict(exc.headers)
    try:
        return status, json.loads(raw), got
    except ValueError:
        return status, raw.decode(), got


def post_signed(
    base: str,
    payload: Any,
    secret: str,
    *,
    now: float | None = None,
    raw: bytes | None = None,
    content_type: str = "application/json",
) -> tuple[int, Any]:
    body = raw if raw is not None else json.dumps(payload).encode()
    headers = {"Content-Type": content_type, **sign(secret, body, now or time.time())}
    status, data, _ = call(f"{base}/webhooks/responses", "POST", body, headers)
    return status, data


def webhook_settings(secret: str | None = "whsec-test-1234", **changes: Any) -> WebhookSettings:
    return WebhookSettings.model_validate({"secret": secret, **changes})
