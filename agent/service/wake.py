"""Waking the leader from another replica: PostgreSQL ``NOTIFY`` / ``LISTEN``.

Every replica serves the webhook, but only the leader runs jobs and keeps the figures
the jobs read. A standby that stores answers sends ``NOTIFY`` on the state database
naming them (``Wake``): the leader, listening on a connection of its own, reads exactly
those answers from the state and notes them (only their accounts are recomputed, at
the next computation); for a detractor it also runs the alerts job at once, so the
answer reaches Slack within seconds wherever it arrived. (On SQLite there is one agent
only, and the in-process trigger is enough.) The channel name is derived from the
database and schema, so agents of other deployments sharing the server are not woken;
it is asked of the database once per store (``channel``).

The notification is part of the transaction that stores the answers (``notify_in``
on its connection): PostgreSQL delivers it when that transaction commits, and not at
all if it rolls back. So the answers are stored and the leader told, or neither: a
``NOTIFY`` that fails rolls the answers back and the webhook answers 503, and the
sender sends them again. ``notify`` sends a wake-up in a transaction of its own, for
what is not stored with answers (a Slack action waking the outbox).

A payload holds less than 8,000 bytes: the answers are spread over several
notifications of one transaction, and a batch too large even for that says only that
answers were stored (``answers=None``): the leader then reads the state again in full.
So does a wake-up from an agent of an older version, whose payload is a job's name.

A notification is delivered only to the connections listening when it is sent. One
the leader missed (its listening connection dropped, or listening started after its
first computation) is covered by a reload: each time listening starts, ``on_wake`` is
told of a wake-up that names no answers, and the leader reads the state in full at its
next computation. A replica that takes the leadership reads it in full too
(``AgentProcess._took_over``).
"""

from __future__ import annotations

import hashlib
import json
import threading
import weakref
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy import Connection, text

from agent.state.store import StateStore

__all__ = [
    "AnswerKey",
    "Wake",
    "WakeListener",
    "channel",
    "decode",
    "encode",
    "notify",
    "notify_in",
]

_log = structlog.get_logger(__name__)
_RETRY_SECONDS = 2.0
#: PostgreSQL refuses a ``NOTIFY`` payload of 8,000 bytes or more.
PAYLOAD_LIMIT = 7_999
#: At most this many notifications for one batch of answers; beyond, a full reload is
#: cheaper for the leader than reading the answers one payload at a time.
_MOST_PAYLOADS = 64

#: The channel of each open store, asked of the database once (``channel``).
_CHANNELS: weakref.WeakKeyDictionary[StateStore, str] = weakref.WeakKeyDictionary()
_CHANNELS_LOCK = threading.Lock()

#: A stored answer: (source, response_id), its key in the state.
AnswerKey = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Wake:
    """A wake-up: the job the leader runs now (None: none), and the answers another
    replica stored (None: not said; the leader reads the state again in full)."""

    job: str | None = None
    answers: tuple[AnswerKey, ...] | None = None


def encode(wake: Wake, limit: int = PAYLOAD_LIMIT) -> list[str]:
    """The payloads of ``wake``, each under ``limit`` bytes; the job goes in the first."""
    whole = [_payload(wake.job, None)]
    if wake.answers is None:
        return whole
    payloads: list[str] = []
    job, keys = wake.job, list[list[str]]()
    size = len(_payload(job, []).encode())
    for source, response_id in wake.answers:
        key = [source, response_id]
        grows = len(json.dumps(key, separators=(",", ":")).encode()) + (1 if keys else 0)
        if size + grows > limit:
            if not keys or len(payloads) + 1 >= _MOST_PAYLOADS:
                return whole  # one key too long, or too many answers for notifications
            payloads.append(_payload(job, keys))
            job, keys = None, []
            size = len(_payload(job, []).encode())
            grows -= 1
        keys.append(key)
        size += grows
    payloads.append(_payload(job, keys))
    return payloads


def decode(payload: str) -> Wake:
    """A payload as ``encode`` wrote it; an older agent's (a job's name) names no answers."""
    try:
        data = json.loads(payload)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return Wake(payload or None, None)
    job = data.get("job")
    answers = data.get("answers")
    return Wake(
        str(job) if job is not None else None,
        None if answers is None else tuple((str(s), str(r)) for s, r in answers),
    )


def _payload(job: str | None, answers: Sequence[Sequence[str]] | None) -> str:
    return json.dumps({"job": job, "answers": answers}, separators=(",", ":"))


def channel(store: StateStore) -> str:
    """The wake-up channel of ``store``'s database and schema (PostgreSQL), asked once."""
    with _CHANNELS_LOCK:
        known = _CHANNELS.get(store)
    if known is not None:
        return known
    with store.engine.connect() as conn:
        where = conn.execute(text("SELECT current_database() || '.' || current_schema()")).scalar()
    name = "ax_wake_" + hashlib.sha256(str(where).encode()).hexdigest()[:16]
    with _CHANNELS_LOCK:
        return _CHANNELS.setdefault(store, name)


def notify_in(conn: Connection, channel: str, wake: Wake) -> None:
    """Send ``wake`` on ``channel`` within the transaction open on ``conn`` (PostgreSQL):
    delivered when it commits, all payloads together, and not at all if it rolls back."""
    for payload in encode(wake):
        conn.execute(text("SELECT pg_notify(:c, :p)"), {"c": channel, "p": payload})


def notify(store: StateStore, wake: Wake) -> None:
    """Tell the leader (whichever replica it is) of ``wake`` in a transaction of its own;
    PostgreSQL only."""
    if store.dialect != "postgresql":
        return
    name = channel(store)
    with store.engine.begin() as conn:
        notify_in(conn, name, wake)


class WakeListener:
    """Listens for ``notify`` on a dedicated connection and calls ``on_wake`` with the
    wake-ups that arrived together (a wake-up naming no answers first whenever it starts
    listening: what was sent before is not delivered to it)."""

    def __init__(self, store: StateStore, on_wake: Callable[[Sequence[Wake]], None]) -> None:
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
        name = channel(self.store)
        with self.store.engine.connect() as opened:
            conn = opened.execution_options(isolation_level="AUTOCOMMIT")
            conn.execute(text(f'LISTEN "{name}"'))
            driver: Any = conn.connection.driver_connection
            _log.debug("wake_listening", channel=name)
            self.on_wake([Wake()])  # notifications sent before now were missed
            while not self._stop.is_set():
                # the notifications of one packet (one sender's transaction) together
                notes: Iterable[Any] = driver.notifies(timeout=1.0, stop_after=1)
                wakes = [decode(str(note.payload)) for note in notes]
                if wakes:
                    self.on_wake(wakes)
