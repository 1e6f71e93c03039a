"""Liveness and readiness, as ``/healthz`` and ``/readyz`` report them.

Ready means: this agent is the leader or a standby (not starting, not stopping), the
state database answers, and the latest finished run of every job (by any replica,
from the cycles log) did not fail. The report also names the current leader (host,
pid, epoch, lease expiry) and this agent's own epoch.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, Literal

from agent.core.redaction import redact
from agent.state.leader_epoch import Fence
from agent.state.store import StateStore

__all__ = ["Health", "Role"]

Role = Literal["starting", "standby", "leader", "stopping"]


class Health:
    """The agent's role (set by the process) and the checks behind readiness."""

    def __init__(
        self, store: StateStore, jobs: Sequence[str], *, fence: Fence | None = None
    ) -> None:
        self.store = store
        self.jobs = tuple(jobs)
        self.fence = fence
        self._role: Role = "starting"
        self._lock = threading.Lock()

    @property
    def role(self) -> Role:
        with self._lock:
            return self._role

    @role.setter
    def role(self, value: Role) -> None:
        with self._lock:
            self._role = value

    def ready(self) -> tuple[bool, dict[str, Any]]:
        """Whether to send this agent traffic, and why (the ``/readyz`` body)."""
        role = self.role
        report: dict[str, Any] = {"role": role}
        try:
            self.store.ping()
        except Exception as exc:  # any failure to reach the database means "not ready"
            report["state"] = f"unreachable: {type(exc).__name__}"
            return False, report
        report["state"] = "ok"
        if self.fence is not None:
            report["replica"] = self.fence.replica
            report["epoch"] = self.fence.epoch
            try:
                current = self.fence.current()
            except Exception as exc:  # the leader's row is for information only
                report["leader"] = f"unknown: {type(exc).__name__}"
            else:
                report["leader"] = current.as_json() if current is not None else None
        failed = self._failed_jobs()
        report["failed_jobs"] = failed
        return role in ("leader", "standby") and not failed, report

    def _failed_jobs(self) -> dict[str, str]:
        failed: dict[str, str] = {}
        for job in self.jobs:
            for cycle in self.store.recent_cycles(10, job=job):
                if cycle.status == "running":
                    continue
                if cycle.status == "failed":
                    failed[job] = redact(cycle.error or "failed")[:300]
                break
        return failed
