"""Loopback HTTP servers for the agent's process tests: a fake at the HTTP boundary,
a fault-injecting proxy in front of another fake, and hooks to kill the agent at a
precise point (after the fake acted, before the agent heard the answer).
"""

from __future__ import annotations

import http.client
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Request:
    method: str
    path: str  # with the query string
    headers: dict[str, str]
    body: bytes


Reply = tuple[int, dict[str, str], bytes]
#: Returned by an app: close the connection without any answer (a dropped connection).
DROP: Any = object()
App = Callable[[Request], Any]


class LoopbackServer:
    """Serves ``app`` on 127.0.0.1 on an ephemeral port, HTTP/1.1 with keep-alive."""

    def __init__(self, app: App) -> None:
        self.app = app
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                """Quiet."""

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = Request(self.command, self.path, dict(self.headers.items()), body)
                reply = outer.app(request)
                if reply is DROP:
                    self.close_connection = True
                    return
                status, headers, data = reply
                try:
                    self.send_response(status)
                    for key, value in headers.items():
                        if key.lower() not in {"content-length", "transfer-encoding", "connection"}:
                            self.send_header(key, value)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client is gone (killed, or timed out)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve  # noqa: N815

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def salesforce_app(fake: Any) -> App:
    """``FakeSalesforce.handle`` as a loopback app (serialised: the fake is not thread-safe)."""
    lock = threading.Lock()

    def app(request: Request) -> Reply:
        with lock:
            status, headers, text = fake.handle(
                request.method,
                "https://loopback" + request.path,
                request.headers,
                request.body.decode() if request.body else None,
            )
        return status, headers, text.encode()

    return app


def proxy_app(upstream: str, timeout: float = 30.0) -> App:
    """Forward every request to ``upstream`` (another loopback server)."""
    parts = urlsplit(upstream)

    def app(request: Request) -> Reply:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
        try:
            headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
            conn.request(request.method, request.path, body=request.body, headers=headers)
            response = conn.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            conn.close()

    return app


@dataclass
class Faults:
    """Answer a share ``rate`` of requests with a fault instead of (or after) the real answer.

    Kinds: ``429`` (with Retry-After), ``503``, ``timeout`` (answer after ``delay`` s,
    longer than the client waits), ``drop`` (connection closed, request not seen) and
    ``drop_after`` (the fake acted, the answer is lost).
    """

    app: App
    rate: float
    kinds: Sequence[str] = ("429", "503", "timeout", "drop", "drop_after")
    seed: int = 0
    delay: float = 2.5
    body_429: bytes = b'{"ok": false, "error": "ratelimited"}'
    only: Callable[[Request], bool] = lambda _r: True
    injected: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()

    def __call__(self, request: Request) -> Any:
        with self._lock:
            kind = self._rng.choice(self.kinds) if self._rng.random() < self.rate else None
        if kind is None or not self.only(request):
            return self.app(request)
        self.injected.append(kind)
        json_type = {"Content-Type": "application/json"}
        if kind == "429":
            return 429, {**json_type, "Retry-After": "0"}, self.body_429
        if kind == "503":
            return 503, {"Content-Type": "text/plain"}, b"upstream unavailable"
        if kind == "drop":
            return DROP
        reply = self.app(request)
        if kind == "timeout":
            time.sleep(self.delay)
            return reply
        return DROP


@dataclass
class Tap:
    """Calls ``hook(request, reply)`` after ``app`` answered and before the answer is sent."""

    app: App
    hook: Callable[[Request, Any], None]

    def __call__(self, request: Request) -> Any:
        reply = self.app(request)
        self.hook(request, reply)
        return reply
