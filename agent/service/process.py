"""One agent process: leadership, the scheduler thread, the HTTP server, signals, shutdown.

Start-up: the leadership primitive is asked first (a second agent on a SQLite file
is refused with the holder named), then the state is opened and migrated and every
configured part built, so a configuration mistake stops the agent before it leads.
The HTTP server starts at once, so a standby is observable. The scheduler thread
waits for the leadership (PostgreSQL: polling every ``standby_poll_seconds``), runs
the jobs while it leads, and stands by again if it loses it. Alerts the jobs record
are sent by the delivery worker (``agent.service.delivery``), a thread of its own
woken as they are recorded, so posting never waits for rule evaluation; it sends
only while this agent leads, one sender at a time. New answers (the webhook, the
file drop, survey sources) are decided by the answers worker (``agent.service.answers``), another
thread woken as they are stored, so a detractor's alert never waits for the jobs of
a running cycle; it decides only while this agent leads.

Leading means holding a leadership epoch (``agent.state.leader_lease``): a heartbeat
thread renews its lease every third of ``lease_seconds``; every side effect is
claimed against the epoch right before it is made, so a leader that lost its lock
session or was paused past its lease makes none once a standby took over, and
steps down at its next claim or heartbeat, whichever comes first.

Shutdown (SIGTERM or SIGINT): no new job starts, the running one stops at its next
checkpoint (the batch in flight finishes and is recorded), the outbox is drained
until the grace period is nearly over (then how many alerts remain is logged), the
leadership released (the lease ended, so a standby takes over at once) and the
server closed; exit status 0. Whatever is still running when ``grace_seconds`` are
up is abandoned: it resumes from its last checkpoint. A second signal ends the wait
at once.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime
from types import FrameType
from typing import Any

import structlog
from sqlalchemy.exc import SQLAlchemyError

from agent.alerts.deliver import Notifier
from agent.config.service import JOB_NAMES
from agent.config.settings import Settings
from agent.core.models import Response
from agent.core.timeutil import utcnow
from agent.service.answers import AnswersWorker
from agent.service.cadence import Cadence
from agent.service.checkpoint import Checkpoints
from agent.service.cycle import run_cycle
from agent.service.delivery import DeliveryWorker
from agent.service.health import Health
from agent.service.http import AgentApp, HttpServer
from agent.service.runner import JobResult, run_job
from agent.service.runtime import Runtime
from agent.service.scheduler import Scheduler
from agent.service.telemetry import LEADERSHIP_CHANGES, watch_leadership, watch_outbox
from agent.service.wake import AnswerKey, Wake, WakeListener, channel, notify, notify_in
from agent.service.webhook import WebhookHandler
from agent.state.errors import LeadershipError, StateError
from agent.state.leader import Leadership
from agent.state.leader_epoch import Fence
from agent.state.leader_lease import LeaderLease
from agent.state.store import StateStore
from agent.state.tx import StateTx
from agent.sync.wiring import build_interactivity

__all__ = ["AgentProcess"]

_log = structlog.get_logger(__name__)

#: How long a thread may keep the GIL while another waits for it (``sys.setswitchinterval``)
#: in the serving agent. A cycle's computation keeps the interpreter busy for minutes on
#: the scheduler's thread; a webhook's answer crosses the HTTP, answers and delivery
#: threads, and each of its many waits (every SQLite call, socket read and write, log
#: line) gives the GIL up and then waits for it again: up to a whole interval each, so
#: at the default 5 ms a detractor waited hundreds of milliseconds behind a cycle
#: doing nothing that blocks it. Threads that wait for nothing never switch, so the
#: computation itself barely slows.
SWITCH_SECONDS = 0.0005

_SLACK_BODY_LIMIT = 1_000_000


class AgentProcess:
    """The running agent; ``serve()`` until a signal, or ``run_once()``."""

    def __init__(
        self,
        settings: Settings,
        store: StateStore,
        leadership: Leadership,
        *,
        dry_run: bool = False,
        full_sync: bool = False,
        notifier: Notifier | None = None,
        echo: Callable[[str], None] = lambda line: None,
        as_of: datetime | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.leadership = leadership
        self.stop_event = threading.Event()
        self.exit_code = 0
        self._signals = 0
        self._stop_at: float | None = None
        self.fence = Fence(store.engine, lease_seconds=settings.schedule.lease_seconds)
        #: The epoch this process last led (None: it has not led yet).
        self._led_epoch: int | None = None
        self.lease = LeaderLease(leadership, self.fence)
        store.fence = self.fence
        checkpoints = Checkpoints(
            self.stop_event, still_leader=lambda: self.fence.leading, claim=self.fence.claim
        )
        self.runtime = Runtime.build(
            settings,
            store,
            dry_run=dry_run,
            full_sync=full_sync,
            checkpoints=checkpoints,
            notifier=notifier,
            echo=echo,
            as_of=as_of,
        )
        schedule = settings.schedule
        cadences = {
            job: Cadence.of(schedule.cadence(job))
            for job in JOB_NAMES
            if schedule.cadence(job).enabled
        }
        self.scheduler = Scheduler(cadences, lambda job: run_job(self.runtime, job))
        self.runtime.trigger = self.scheduler.trigger
        self.runtime.pipeline.repo.fence = self.fence
        self.delivery = DeliveryWorker(self.runtime, lambda: self.fence.leading)
        self.answers = AnswersWorker(self.runtime, lambda: self.fence.leading, self.fence.claim)
        self.health = Health(store, list(cadences), fence=self.fence)
        self.server: HttpServer | None = None
        self._heart = threading.Event()
        #: Notifications to the leader sent on their own that failed (a Slack action's,
        #: a standby's answers), and how many of those a full-read notification sent
        #: since covers: while some are not covered, the next one asks for a full read.
        #: Webhook threads send at once: one that went out covers only the losses
        #: counted before it was built, never one that happened while it was sent.
        self._lost = 0
        self._covered = 0
        self._lost_lock = threading.Lock()
        #: Per webhook thread: the wake-up sent with the answers it just stored (None:
        #: none, this agent led when they were stored).
        self._told = threading.local()
        watch_outbox(self.runtime.pipeline.repo.pending_count)
        watch_leadership(lambda: self.fence.epoch)
        self.fence.on_change = lambda _leading, _epoch: LEADERSHIP_CHANGES.inc()

    # -- one pass ---------------------------------------------------------------------

    def run_once(self) -> list[JobResult]:
        """Every enabled job once, in dependency order, as the leader (lock already held).

        Raises ``LeadershipError`` when another agent leads by its lease, or when the
        attempt to take the leadership failed on a database error (saying which).
        """
        if not self.lease.try_lead():
            self._release()
            resource = self.leadership.resource
            if self.lease.failed is not None:  # not another agent: the database refused
                raise LeadershipError(
                    f"could not take the leadership on {resource}: {self.lease.failed}"
                )
            holder = self.fence.current()
            who = holder.describe() if holder is not None else "another ax-agent"
            raise LeadershipError(f"{who} leads on {resource}")
        self.health.role = "leader"
        heart = self._start_heartbeat(once=True)
        self._took_over()
        try:
            return run_cycle(
                self.runtime,
                self.scheduler.jobs,
                self.scheduler.execute,
                lambda: self.scheduler.stopping,
            )
        finally:
            self._heart.set()
            heart.join(5)
            self._release()

    # -- serving ----------------------------------------------------------------------

    def serve(self, *, install_signals: bool = True) -> int:
        """Run until stopped; returns the exit status.

        While it serves, the interpreter hands the GIL to a waiting thread after
        ``SWITCH_SECONDS`` instead of Python's default 5 ms (restored on return)."""
        previous = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_SECONDS)
        try:
            return self._serve(install_signals=install_signals)
        finally:
            sys.setswitchinterval(previous)

    def _serve(self, *, install_signals: bool) -> int:
        if install_signals:
            self.install_signals()
        if self.settings.server.enabled:
            try:
                self.server = self._server()
            except OSError as exc:  # the port is taken, or the host is not ours
                server = self.settings.server
                _log.error("http_cannot_listen", host=server.host, port=server.port, error=str(exc))
                self._release()
                return 2
            self.server.start()
        listener = WakeListener(self.store, self._woken)
        listener.start()
        heart = self._start_heartbeat()
        self._start_delivery()
        worker = threading.Thread(target=self._work, name="scheduler", daemon=True)
        worker.start()
        while not self.stop_event.wait(0.5):
            pass
        self.health.role = "stopping"
        self.scheduler.stop()
        grace = self.settings.schedule.grace_seconds
        self._drain_until(grace)
        self.answers.stop()  # answers not decided yet are stored: the next cycle decides
        self.delivery.stop()
        finished = self._join(worker, grace)
        finished = self.answers.join(max(0.0, self._left(grace))) and finished
        finished = self._join_delivery(grace) and finished
        self._heart.set()
        heart.join(5)
        self._release()
        listener.stop()
        if self.server is not None:
            self.server.stop()
        if not finished:
            _log.warning(
                "shutdown_grace_exceeded",
                grace_seconds=self.settings.schedule.grace_seconds,
                note="the running job resumes from its last checkpoint",
            )
            logging.shutdown()
            os._exit(self.exit_code)  # the job thread is stuck in a call; do not wait for it
        _log.info("agent_stopped", exit_code=self.exit_code)
        return self.exit_code

    def request_stop(self) -> None:
        """Stop taking new work and shut down (what SIGTERM does)."""
        self._signals += 1
        if self._stop_at is None:
            self._stop_at = time.monotonic()
        self.stop_event.set()
        self.scheduler.stop()
        if self._signals > 1:  # a second signal: stop delivering too
            self.runtime.pipeline.repo.drain_deadline = time.monotonic()

    def _start_delivery(self) -> None:
        """Alerts recorded by a job go to the delivery worker, not the scheduler's thread;
        new answers go to the answers worker (a dry run leaves both to the jobs)."""
        if self.runtime.dry_run:
            return
        repo = self.runtime.pipeline.repo
        repo.clock = utcnow  # recorded = when the row is written, not when evaluation began
        self.runtime.pipeline.handoff = self.delivery.wake
        self.delivery.start()
        self.runtime.answered = self.answers.wake
        self.answers.start()

    def _join_delivery(self, grace: float) -> bool:
        while self.delivery.alive and self._left(grace) > 0 and self._signals < 2:
            self.delivery.join(0.1)
        return not self.delivery.alive

    def _left(self, grace: float) -> float:
        """Seconds of the grace period left since the stop was asked for."""
        started = self._stop_at if self._stop_at is not None else time.monotonic()
        return started + grace - time.monotonic()

    def _drain_until(self, grace: float) -> None:
        """Delivery goes on while stopping, until shortly before the grace period ends."""
        started = self._stop_at if self._stop_at is not None else time.monotonic()
        margin = min(2.0, grace / 5)
        repo = self.runtime.pipeline.repo
        deadline = started + grace - margin
        if repo.drain_deadline is None or repo.drain_deadline > deadline:
            repo.drain_deadline = deadline

    # -- leadership ---------------------------------------------------------------------

    def _start_heartbeat(self, *, once: bool = False) -> threading.Thread:
        """The lease's heartbeat, in its own thread so a long job never lets it lapse,
        but never over a stuck job (``_stuck``). ``once``: the job runs on the caller's
        thread (``run --once``), which nobody else ends."""
        self._heart.clear()
        beat = min(self.lease.heartbeat_seconds, self.settings.schedule.job_timeout_seconds)

        def run() -> None:
            while not self._heart.wait(beat):
                if not self.fence.leading or self._stuck(once=once):
                    continue
                try:
                    self.lease.heartbeat()
                except Exception:  # the heartbeat must never die; claims fence anyway
                    _log.exception("heartbeat_failed")

        thread = threading.Thread(target=run, name="heartbeat", daemon=True)
        thread.start()
        return thread

    def _stuck(self, *, once: bool) -> bool:
        """Whether the running job has run past ``schedule.job_timeout_seconds``; the
        first time, the leader steps down (a standby takes over at once, and what the
        job still tries to commit is refused by its ended epoch) and the agent stops
        with status 1. A job that does not return within the grace period ends the
        process: the serving loop sees to it, or, in ``run --once``, this thread."""
        running = self.scheduler.running
        bound = self.settings.schedule.job_timeout_seconds
        if running is None or running[1] < bound:
            return False
        job, seconds = running
        _log.error(
            "job_stuck",
            job=job,
            seconds=round(seconds, 1),
            job_timeout_seconds=bound,
            note="the leader steps down and the agent exits; the job resumes from its "
            "last checkpoint",
        )
        self.exit_code = 1
        try:
            self.lease.step_down(f"the {job} job ran over {bound:g} s")
        except Exception:  # the lease runs out all the same: it is no longer renewed
            _log.exception("step_down_failed")
        self.request_stop()
        if once:
            deadline = time.monotonic() + self.settings.schedule.grace_seconds
            while self.scheduler.running is not None and time.monotonic() < deadline:
                time.sleep(0.1)
            if self.scheduler.running is not None:
                _log.error("job_stuck_exiting", job=job)
                logging.shutdown()
                os._exit(1)  # the job's thread is stuck in a call: do not wait for it
        self._heart.set()  # renewing is over: the heartbeat ends here
        return True

    def _work(self) -> None:
        leading = False
        try:
            while not self.stop_event.is_set():
                self.health.role = "standby"
                if not self._await_leadership():
                    break
                leading = True
                self.health.role = "leader"
                _log.info(
                    "leading",
                    resource=self.leadership.resource,
                    epoch=self.fence.epoch,
                    lease_seconds=self.fence.lease_seconds,
                )
                self._took_over()
                self.delivery.wake()  # what the last leader left pending goes out now
                self.answers.wake()  # answers noted while standing by
                check = self.settings.schedule.leader_check_seconds
                if self.scheduler.run(lambda: self.fence.leading, check) == "stopped":
                    break
                leading = False
                self.lease.step_down("leadership lost")
                if not self.leadership.can_stand_by:
                    _log.error("leadership_lost", resource=self.leadership.resource)
                    self.exit_code = 1
                    break
            if leading and self.fence.leading:
                self._flush()
        except Exception:  # the scheduler thread must never die silently
            _log.exception("agent_failed")
            self.exit_code = 1
        finally:
            self.stop_event.set()

    def _took_over(self) -> None:
        """Runs an older epoch left marked ``running`` are closed as failed; the figures
        are read again in full at the next computation.

        While another replica led, this one was told of the answers stored elsewhere
        only as notifications, which it does not keep while standing by, and which are
        lost while no connection listens (the agent down, or listening not yet
        started). Reading the state in full is what makes a new leader's figures equal
        a full computation whatever it missed; before the first computation of a
        process it costs nothing (that one is full anyway). Taking the epoch right
        after its own, nobody led in between: what it heard of meanwhile, standing by,
        already marked its figures stale, so they are kept (one process running cycle
        after cycle stays incremental)."""
        epoch = self.fence.epoch
        if self._led_epoch is None or epoch != self._led_epoch + 1:
            # and the answers worker does not decide over this one's last figures: the
            # alerts the other leader recorded rest on newer ones
            self.runtime.data_changed(withdraw=True)
        self._led_epoch = epoch
        abandoned = self.store.abandon_running_cycles(
            f"the agent stopped during this run (killed, lost or superseded by epoch {epoch}); "
            "it resumes from its last checkpoint",
            before_epoch=epoch,
        )
        if abandoned:
            _log.warning("abandoned_runs_closed", runs=abandoned)

    def _await_leadership(self) -> bool:
        """Lead now, or stand by until the leader goes; False when stopped first."""
        poll = self.settings.schedule.standby_poll_seconds
        announced = False
        while not self.stop_event.is_set():
            try:
                if self.lease.try_lead():
                    return True
                if not announced:
                    current = self.fence.current()
                    leader = current.describe() if current is not None else None
                    _log.info("standing_by", leader=leader, poll_seconds=poll)
                    announced = True
            except (StateError, SQLAlchemyError) as exc:  # a standby outlives the database
                _log.warning("leadership_check_failed", error=" ".join(str(exc).split()))
            self.stop_event.wait(poll)
        return False

    def _flush(self) -> None:
        """Deliver what the outbox holds before leaving (a pending alert is never lost
        either way: the next leader delivers it)."""
        if self.runtime.dry_run or "outbox" not in self.scheduler.cadences:
            return
        with self.runtime.pipeline.repo.sending:
            pass  # a drain in progress ends first (at the latest at the drain deadline)
        result = run_job(self.runtime, "outbox")
        remaining = self.runtime.pipeline.repo.pending_count()
        _log.info("outbox_flushed", ok=result.ok, alerts_remaining=remaining, **result.counts)
        if remaining:
            _log.warning(
                "alerts_remaining_at_stop",
                alerts_remaining=remaining,
                note="the next leader (or this agent after a restart) sends them",
            )

    def _join(self, worker: threading.Thread, grace: float) -> bool:
        deadline = time.monotonic() + grace
        while worker.is_alive() and time.monotonic() < deadline and self._signals < 2:
            worker.join(0.1)
        return not worker.is_alive()

    def _release(self) -> None:
        try:
            self.lease.step_down("stopping")
        except Exception as exc:  # the lock dies with the session or the process anyway
            _log.warning("leadership_release_failed", error=str(exc))

    def install_signals(self) -> dict[int, Any]:
        """SIGTERM and SIGINT stop the agent gracefully (main thread only).

        Returns the handlers they replace, for ``signal.signal`` to put back.
        """

        def handle(signum: int, _frame: FrameType | None) -> None:
            _log.info("stop_requested", signal=signal.Signals(signum).name, count=self._signals + 1)
            self.request_stop()

        return {sig: signal.signal(sig, handle) for sig in (signal.SIGTERM, signal.SIGINT)}

    # -- HTTP ---------------------------------------------------------------------------

    def _server(self) -> HttpServer:
        hook = WebhookHandler(
            self.settings.webhook, self.store, on_stored=self._received, within=self._within
        )
        slack = build_interactivity(
            self.settings,
            self.store.engine,
            self.runtime.notifier,
            self._slack_acted,
        )
        limit = max(self.settings.webhook.max_body_bytes, _SLACK_BODY_LIMIT)
        return HttpServer(
            AgentApp(self.health, hook, slack), self.settings.server, max_body_bytes=limit
        )

    def _slack_acted(self) -> None:
        """A Slack action (a loop closed from its button) was recorded: its message update
        goes out now. The action changes alert states only, which every deciding job
        reads from the state, never the figures' inputs: the leader is woken for the
        outbox and told that no answers were stored, so it keeps its figures."""
        self._wake_leader("outbox", ())

    def _woken(self, wakes: Sequence[Wake]) -> None:
        """Other replicas stored answers (``wakes`` arrived together) and may ask for jobs.

        The leader reads the answers they name and notes them: only their accounts are
        recomputed, once, at the next computation, however many arrived. A wake-up that
        names none (too many for a notification, an older agent's, or listening just
        started and may have missed some) has the figures read again in full. A standby
        keeps nothing of them: a replica reads the state in full when it takes the
        leadership (``_took_over``)."""
        named = [w.answers for w in wakes]
        try:
            if any(keys is None for keys in named) or not self.fence.leading:
                self.runtime.data_changed()
            else:
                self.runtime.stored_elsewhere([k for keys in named if keys for k in keys])
        except Exception:  # cannot read them now: the figures are read again in full
            _log.exception("wake_answers_unread")
            self.runtime.data_changed()
        for job in dict.fromkeys(w.job for w in wakes if w.job is not None):
            if job == "outbox":
                self.delivery.wake()
            self.scheduler.trigger(job)

    def _within(self, tx: StateTx, added: Sequence[Response]) -> None:
        """In the transaction that stores the webhook's new answers: a standby on
        PostgreSQL tells the leader which answers it stores, and for a detractor wakes
        its alerts job. The notification is delivered when the answers commit, and
        should it fail they are not stored (the webhook answers 503, the sender resends):
        an answer is never stored without the leader being told."""
        self._told.wake = None
        # the epoch, not the role: a lost lease shows in the role only once the
        # scheduler's job in progress has ended, and the next leader needs these meanwhile
        if self.fence.leading or self.store.dialect != "postgresql":
            return
        wake = Wake(_job_for(added), _keys(added))
        lost = self._uncovered()
        if lost:  # a wake-up was lost: the leader reads the state in full
            wake = Wake(wake.job, None)
        notify_in(tx.connection, channel(self.store), wake)
        self._told.wake, self._told.lost = wake, lost

    def _received(self, added: Sequence[Response]) -> None:
        """New answers from the webhook: the answers worker decides them now on the
        leader; a standby told the leader through the database which answers it stored
        (``_within``), and for a detractor wakes its alerts job (so does a dry run, whose
        alerts job previews it).

        Should noting them fail, the figures may lack answers that are stored (a resend
        is a repeat, which notes nothing): they are read again in full, and the leader's
        alerts job runs, so the stored answers are decided all the same; the error goes
        on to the webhook, which logs it."""
        told: Wake | None = getattr(self._told, "wake", None)
        self._told.wake = None
        try:
            self.runtime.responses_added(added)  # wakes the answers worker
        except Exception:
            self.runtime.data_changed()
            self._wake_leader("alerts")
            raise
        if not added:
            return
        job = _job_for(added)
        if told is not None:  # the leader was told as the answers were stored
            if told.answers is None:
                self._cover(self._told.lost)
            if job is not None:
                self.scheduler.trigger(job)
        elif not self.fence.leading:  # it led while they were stored, or SQLite
            self._wake_leader(job, added)
        elif job is not None and self.runtime.answered is None:
            self._wake_leader(job)

    def _wake_leader(self, job: str | None, stored: Sequence[Response] | None = None) -> None:
        """Run ``job`` now on the leader: this agent, or another woken through the
        database in a transaction of its own, told which answers were ``stored`` here
        (None: not said, or none)."""
        if job == "outbox":
            self.delivery.wake()
        if job is not None:
            self.scheduler.trigger(job)
        if not self.fence.leading:
            keys = None if stored is None else _keys(stored)
            lost = self._uncovered()
            if lost:  # a wake-up was lost: the leader reads the state in full
                keys = None
            try:
                notify(self.store, Wake(job, keys))
            except Exception as exc:  # stored already; the leader's own cadence decides it
                _log.warning("wake_notify_failed", error=str(exc))
                with self._lost_lock:
                    self._lost += 1
            else:
                if keys is None:  # a full read: it covers the losses counted before it
                    self._cover(lost)

    def _uncovered(self) -> int:
        """The count of lost wake-ups when some are not covered yet (else 0)."""
        with self._lost_lock:
            return self._lost if self._lost > self._covered else 0

    def _cover(self, lost: int) -> None:
        """A full-read wake-up built when ``lost`` wake-ups were lost went out."""
        with self._lost_lock:
            self._covered = max(self._covered, lost)


def _job_for(added: Sequence[Response]) -> str | None:
    """The job new answers wake on the leader: alerts for a detractor, else none."""
    return "alerts" if any(r.score <= 6 for r in added) else None


def _keys(stored: Sequence[Response]) -> tuple[AnswerKey, ...]:
    return tuple((r.source, r.response_id) for r in stored)
