"""The agent's one HTTP server: a small WSGI app served by waitress.

waitress is a production WSGI server in pure Python (no C build, no extra process
model): a fixed thread pool behind an asynchronous socket loop, request-size limits
enforced before the app sees a byte, and it runs in a thread beside the scheduler,
which is what one agent process with one leadership lock needs. (gunicorn forks
workers, which would each want the lock; an ASGI server would need an async app for
five small endpoints.)

Bodies over the limit are answered 413, never with a reset connection: a request whose
``Content-Length`` (or chunked body, counted while it arrives) exceeds the limit has its
body read and thrown away unkept (a client that sent ``Expect: 100-continue`` is
answered at once, before it sends the body), so that the client, which sends its whole
body before it reads, sees the answer; the app refuses it from the length alone. Only
beyond ``DRAIN_LIMIT`` does the server close the connection.

Routes: ``GET /healthz``, ``GET /readyz``, ``GET /metrics`` (prometheus_client),
``POST /webhooks/responses`` and, when Slack is configured with a signing secret,
``POST /slack/interactivity``.
"""

from __future__ import annotations

import contextlib
import io
import json
import socket
import threading
from collections.abc import Callable, Iterable
from typing import Any

import structlog
from prometheus_client import make_wsgi_app
from waitress.channel import HTTPChannel
from waitress.parser import HTTPRequestParser
from waitress.server import create_server
from waitress.wasyncore import close_all

from agent.config.service import ServerSettings
from agent.service import webhook
from agent.service.health import Health

__all__ = ["DRAIN_LIMIT", "AgentApp", "HttpServer", "WsgiApp"]

#: The most an over-limit body is read (and thrown away) to answer it 413 cleanly.
DRAIN_LIMIT = 256 * 1024 * 1024

_log = structlog.get_logger(__name__)

StartResponse = Callable[..., Any]
WsgiApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]
SLACK_PATH = "/slack/interactivity"
_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    411: "Length Required",
    413: "Payload Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


class AgentApp:
    """Routes requests to health, readiness, metrics, the webhook and Slack's buttons."""

    def __init__(
        self,
        health: Health,
        hook: webhook.WebhookHandler,
        slack: WsgiApp | None = None,
    ) -> None:
        self.health = health
        self.hook = hook
        self.slack = slack
        self.metrics: WsgiApp = make_wsgi_app()

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "GET")
        routes: dict[str, tuple[str, WsgiApp]] = {
            "/healthz": ("GET", self._healthz),
            "/readyz": ("GET", self._readyz),
            "/metrics": ("GET", self.metrics),
            webhook.PATH: ("POST", self._webhook),
        }
        if self.slack is not None:
            routes[SLACK_PATH] = ("POST", self.slack)
        route = routes.get(path)
        if route is None:
            return _json(start_response, 404, {"error": f"no such endpoint: {path}"})
        if method != route[0] and not (route[0] == "GET" and method == "HEAD"):
            return _json(start_response, 405, {"error": f"use {route[0]}"}, [("Allow", route[0])])
        return route[1](environ, start_response)

    def _healthz(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        return _json(start_response, 200, {"status": "alive", "role": self.health.role})

    def _readyz(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        ready, report = self.health.ready()
        return _json(start_response, 200 if ready else 503, {"ready": ready, **report})

    def _webhook(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        limit = self.hook.settings.max_body_bytes
        try:
            length = int(environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = -1
        if length < 0:
            return _json(start_response, 411, {"error": "send a Content-Length"})
        if length > limit:  # refused from its length: the body is not read
            return _too_large(start_response, limit)
        body = environ["wsgi.input"].read(min(length, limit + 1))
        if len(body) > limit:
            return _too_large(start_response, limit)
        reply = self.hook.handle(_headers(environ), body)
        return _json(start_response, reply.status, reply.body, list(reply.headers))


def _too_large(start_response: StartResponse, limit: int) -> list[bytes]:
    return _json(start_response, 413, {"error": f"body larger than {limit} bytes"})


class _Discarded:
    """A body buffer that keeps nothing: it counts the bytes of an over-limit body."""

    def __init__(self, size: int) -> None:
        self.size = size

    def __len__(self) -> int:
        return self.size

    def __bool__(self) -> bool:
        return self.size > 0

    def append(self, data: bytes) -> None:
        self.size += len(data)

    def getfile(self) -> io.BytesIO:
        return io.BytesIO()

    def get(self, numbytes: int = -1, skip: bool = False) -> bytes:
        return b""

    def skip(self, numbytes: int, allow_prune: int = 0) -> None:
        return None

    def prune(self) -> None:
        return None

    def close(self) -> None:
        return None


class _BoundedParser(HTTPRequestParser):
    """waitress's request parser, except that a body over ``body_limit`` is not kept."""

    body_limit = 1 << 20

    def received(self, data: bytes) -> int:
        consumed: int = super().received(data)
        receiver = self.body_rcv
        if receiver is None or isinstance(receiver.buf, _Discarded) or self.error:
            return consumed
        if self.content_length > self.body_limit or len(receiver.buf) > self.body_limit:
            kept = receiver.buf
            receiver.buf = _Discarded(len(kept))  # type: ignore[assignment]  # same interface
            kept.close()
            self.headers = {**self.headers, "CONNECTION": "close"}  # answer, then close
            if self.expect_continue and self.content_length > self.body_limit:
                # The client waits for our go before sending: answer now instead.
                self.expect_continue = False
                self.body_rcv = None
                self.completed = True
        return consumed


def _bounded_channel(limit: int) -> type[HTTPChannel]:
    parser = type("BoundedParser", (_BoundedParser,), {"body_limit": limit})
    return type("BoundedChannel", (HTTPChannel,), {"parser_class": parser})


def _headers(environ: dict[str, Any]) -> dict[str, str]:
    headers = {
        key[5:].replace("_", "-").lower(): str(value)
        for key, value in environ.items()
        if key.startswith("HTTP_")
    }
    if environ.get("CONTENT_TYPE"):
        headers["content-type"] = str(environ["CONTENT_TYPE"])
    return headers


def _json(
    start_response: StartResponse,
    status: int,
    body: dict[str, Any],
    extra: list[tuple[str, str]] | None = None,
) -> list[bytes]:
    data = json.dumps(body).encode("utf-8")
    headers = [
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(data))),
        ("Cache-Control", "no-store"),
        *(extra or []),
    ]
    start_response(f"{status} {_REASONS.get(status, '')}".strip(), headers)
    return [data]


def _check_free(host: str, port: int) -> None:
    """Raise ``OSError`` now if ``host:port`` cannot be listened on (waitress would leak
    its half-built server when the bind fails)."""
    if port == 0:
        return
    for family, kind, proto, _name, address in socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    ):
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(address)
        return


class HttpServer:
    """waitress serving ``app`` in a background thread until ``stop()``."""

    def __init__(self, app: WsgiApp, settings: ServerSettings, *, max_body_bytes: int) -> None:
        _check_free(settings.host, settings.port)
        self._server = create_server(
            app,
            host=settings.host,
            port=settings.port,
            threads=settings.threads,
            max_request_body_size=max(DRAIN_LIMIT, max_body_bytes + 1),
            ident="ax-agent",
            channel_timeout=30,
            clear_untrusted_proxy_headers=True,
        )
        self._server.channel_class = _bounded_channel(max_body_bytes)  # type: ignore[union-attr]
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="http", daemon=True)

    def _serve(self) -> None:
        """The server loop; a socket closed under it while stopping is the normal end."""
        try:
            self._server.run()
        except OSError as exc:
            if not self._stopping.is_set():
                raise
            _log.debug("http_loop_closed", error=str(exc))

    @property
    def port(self) -> int:
        """The port it listens on (useful with ``port: 0``)."""
        return int(self._server.effective_port)  # type: ignore[union-attr]  # one TCP socket

    @property
    def host(self) -> str:
        return str(self._server.effective_host)  # type: ignore[union-attr]  # one TCP socket

    def start(self) -> None:
        self._thread.start()
        _log.info("http_listening", host=self.host, port=self.port)

    def stop(self, timeout: float = 5.0) -> None:
        """Close the listening socket and every connection, then let the loop end.

        The closing runs inside the server's own loop thread (through waitress's
        trigger): closing its sockets from this thread would leave its ``select``
        waiting on a closed descriptor. With nothing left to watch, the loop returns.
        """
        server = self._server
        self._stopping.set()
        if self._thread.is_alive():
            sockets = server._map  # type: ignore[union-attr]  # waitress keeps its socket map private
            with contextlib.suppress(OSError):  # a closed trigger: the loop is ending already
                server.trigger.pull_trigger(lambda: close_all(sockets))  # type: ignore[union-attr]
            self._thread.join(timeout)
        if not self._thread.is_alive():
            close_all(server._map)  # type: ignore[union-attr]  # whatever the loop left open
        else:
            server.close()
        server.task_dispatcher.shutdown(timeout=max(1, int(timeout)))
