"""A thread of the agent that sleeps until woken: the delivery and answers workers.

Started with the serving agent and stopped with it; ``wake()`` from any thread asks
for a round, ``stop()`` for no new one. What a round does, and whether it runs while
the agent does not lead, is the subclass's ``_loop``.
"""

from __future__ import annotations

import threading

__all__ = ["Worker"]


class Worker:
    """A daemon thread named ``name`` running ``_loop`` until ``stop()``."""

    def __init__(self, name: str) -> None:
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def wake(self) -> None:
        """There is work: do a round now (any thread)."""
        self._wake.set()

    def stop(self) -> None:
        """Start no new round (the one in progress ends as the subclass says)."""
        self._stop.set()
        self._wake.set()

    def join(self, timeout: float) -> bool:
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _loop(self) -> None:
        raise NotImplementedError
