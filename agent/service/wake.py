"""Waking the leader from another replica: PostgreSQL ``NOTIFY`` / ``LISTEN``.

Every replica serves the webhook, but only the leader runs jobs. A standby that
stores a detractor sends ``NOTIFY`` on the state database; the leader listens on a
connection of its own and runs the alerts job at once, so the answer reaches Slack
within seconds wherever it arrived. (On SQLite there is one agent only, and the
in-process trigger is enough.) The channel name is derived from the database and
schema, so agents of other deployments sharing the server are not woken.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable
from typing import Any

import structlog
from sqlalchemy import text

from agent.state.store import StateStore

__all__ = ["WakeListener", "notify"]

_log = structlog.get_logger(__name__)
_RETRY_SECONDS = 2.0


def _channel(store: StateStore) -> str:
    with store.engine.connect() as conn:
        where = conn.execute(text("SELECT current_database() || '.' || current_schema()")).scalar()
    return "ax_wake_" + hashlib.sha256(str(where).encode()).hexdigest()[:16]


def notify(store: StateStore, job: str) -> None:
    """Ask the leader (whichever replica it is) to run ``job`` now; PostgreSQL only."""
    if store.dialect != "postgresql":
        return
    channel = _channel(store)
    with store.engine.begin() as conn:
        conn.execute(text("SELECT pg_notify(:c, :j)"), {"c": channel, "j": job})


class WakeListener:
    """Listens for ``notify`` on a dedicated connection and calls ``on_wake(job)``."""

    def __init__(self, store: StateStore, on_wake: Callable[[str], None]) -> None:
        self.store = store
        self.on_wake = on_wake
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="wake", daemon=True)

    def start(self) -> None:
        if self.store.dialect == "postgresql":
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except Exception as exc:  # a dropped connection: listen again shortly
                _log.warning("wake_listener_reconnecting", error=str(exc))
                self._stop.wait(_RETRY_SECONDS)

    def _listen(self) -> None:
        channel = _channel(self.store)
        with self.store.engine.connect() as opened:
            conn = opened.execution_options(isolation_level="AUTOCOMMIT")
            conn.execute(text(f'LISTEN "{channel}"'))
            driver: Any = conn.connection.driver_connection
            _log.debug("wake_listening", channel=channel)
            while not self._stop.is_set():
                for note in driver.notifies(timeout=1.0):
                    self.on_wake(str(note.payload))
