"""The leader's lock and its epoch together: taking over, the heartbeat, stepping down.

``LeaderLease`` pairs the lock primitive of the database (``agent.state.leader``:
an advisory lock on PostgreSQL, a ``flock`` beside a SQLite file) with the epoch and
lease of ``agent.state.leader_epoch``. An agent leads while it holds an epoch whose
lease it keeps renewing; the lock only speeds up a takeover:

- a candidate that wins the lock takes the next epoch at once when the previous
  leader held the lock too (that leader's session is gone), or when the lease ran
  out; otherwise the current leader leads by its lease alone, and the candidate
  lets the lock go again;
- a candidate that cannot win the lock takes over when the lease ran out (a hung
  leader keeps its session, and so its lock): it ends that leader's sessions first
  when its database role may (``pg_terminate_backend``), and only when the lock
  session the leadership row names still holds the lock (never another candidate's
  that won the lock meanwhile); otherwise the lease alone decides; the new leader
  takes the lock once it is free;
- a candidate that wins the lock from a leader that held it (and did not resign)
  ends that leader's other sessions before it takes the epoch: a leader paused inside
  a transaction holds rows every replica writes (the input version, the leadership
  row), which would otherwise stay locked, the takeover and every replica's webhook
  waiting, until the server's ``idle_in_transaction_session_timeout``;
- the heartbeat (every third of the lease) renews the lease and confirms the lock;
  a superseded epoch or a lost lock session makes the agent step down at once;
- a database error while taking the epoch (this agent's session ended by another
  replica, the server restarting) is a failed attempt: the agent lets the lock go,
  stays a standby and tries again at its next attempt.
"""

from __future__ import annotations

import structlog
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from agent.state.leader_base import Leadership
from agent.state.leader_epoch import Fence, LeaderInfo

__all__ = ["LeaderLease"]

log = structlog.get_logger("agent.state.leader")


class LeaderLease:
    """Leadership with fencing for one agent process (see the module's text)."""

    def __init__(self, lock: Leadership, fence: Fence) -> None:
        self.lock = lock
        self.fence = fence
        self._had_lock = False
        #: Why the last attempt failed on a database error (one line); None when it did
        #: not fail (it led, or another agent leads).
        self.failed: str | None = None

    @property
    def leading(self) -> bool:
        return self.fence.leading

    @property
    def heartbeat_seconds(self) -> float:
        return max(0.2, self.fence.lease_seconds / 3)

    def try_lead(self) -> bool:
        """One attempt to lead now; True if this agent leads (with a new epoch).

        A database error on the way (reading or taking the epoch) makes it False, the
        lock let go: a candidate holding the lock without an epoch would make the
        others wait for the lease and then end its sessions. Should the error have
        hidden a committed take, the leadership row names this agent with an epoch it
        does not know: its next attempt takes the next one (it holds the lock then),
        or another replica takes over as from any leader that lost its lock session.
        ``StateError`` (the lock's database is unreachable) goes to the caller as before.
        """
        if self.fence.leading:
            return True
        self.failed = None
        try:
            return self._try_take()
        except SQLAlchemyError as exc:
            self._had_lock = False
            self.lock.release()
            cause = exc.orig if isinstance(exc, DBAPIError) else exc
            self.failed = " ".join(str(cause).split())
            log.warning(
                "leadership_not_taken",
                error=self.failed,
                note="a failed attempt: standing by, trying again at the next attempt",
            )
            return False

    def _try_take(self) -> bool:
        if self.lock.try_acquire():
            exclusive = not self.lock.can_stand_by  # SQLite: the file lock is the truth
            pid = self.lock.session_pid()
            if not exclusive:
                self._end_superseded(self.fence.current())
            if self.fence.take(holds_lock=True, lock_pid=pid, force=exclusive):
                self._had_lock = True
                return True
            self.lock.release()  # the leader leads by its lease; it takes the lock next
            return False
        if not self.lock.can_stand_by:
            return False
        info = self.fence.current()
        if info is None or not info.expired:
            return False
        log.warning(
            "leader_lease_expired",
            leader=info.describe(),
            note="the leader keeps its lock session but stopped renewing its lease",
        )
        if not self._end_hung(info):
            log.warning("leader_session_not_ended", note="the lease alone decides")
        self._had_lock = False
        return self.fence.take(holds_lock=False, lock_pid=None)

    def _end_superseded(self, info: LeaderInfo | None) -> None:
        """This agent won the lock: end the other sessions of the leader ``info`` names
        when that leader held the lock (its lock session is gone, it did not resign).
        Not a leader that resigned (it stands by, serving webhooks), nor one that leads
        by its lease alone (it keeps leading), nor this agent itself."""
        if info is None or info.host is None or info.pid is None or info.lock_pid is None:
            return
        if (info.host, info.pid) != (self.fence.host, self.fence.pid):
            self.lock.end_sessions_of(info.host, info.pid)

    def _end_hung(self, info: LeaderInfo) -> bool:
        """End the sessions of the leader ``info`` names, whose lease ran out, when its
        lock session still holds the lock: never those of whoever else holds the lock
        now (a candidate about to take the epoch), nor this agent's own."""
        if info.host is None or info.pid is None or info.lock_pid is None:
            return False
        if (info.host, info.pid) == (self.fence.host, self.fence.pid):
            return False
        return self.lock.terminate_holder(info.host, info.pid, info.lock_pid)

    def heartbeat(self) -> bool:
        """Renew the lease and check the lock; False (stepped down) when no longer leading."""
        if not self.fence.leading:
            return False
        try:
            holds = self.lock.is_leader()
        except Exception as exc:  # a broken check is a lost lock
            log.warning("leader_lock_check_failed", error=str(exc))
            holds = False
        if self._had_lock and not holds:
            self.step_down("the lock session was lost")
            return False
        new_pid = None
        if not holds and self.lock.can_stand_by:
            try:
                if self.lock.try_acquire():
                    self._had_lock = True
                    new_pid = self.lock.session_pid()
            except Exception as exc:  # keep leading by the lease; try again next beat
                log.warning("leader_lock_not_taken", error=str(exc))
        try:
            renewed = self.fence.renew(lock_pid=new_pid)
        except Exception as exc:  # the database is unreachable: claims fail anyway
            log.warning("leader_lease_not_renewed", error=str(exc))
            return self.fence.leading
        if not renewed:
            self.step_down("the epoch was superseded")
        return renewed

    def step_down(self, reason: str) -> None:
        """Stop leading: end the lease (if still ours) and let the lock go."""
        if self.fence.leading:
            level = log.info if reason == "stopping" else log.warning
            level("leader_stepping_down", reason=reason, epoch=self.fence.epoch)
        self.fence.resign()
        self._had_lock = False
        try:
            self.lock.release()
        except Exception as exc:  # the lock dies with its session anyway
            log.warning("leadership_release_failed", error=str(exc))
