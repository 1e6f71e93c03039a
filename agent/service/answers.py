"""The answers worker: new answers' alerts decided at once, on a thread of their own.

An answer stored between cycles (the webhook, the file drop, a survey source) is
noted by the runtime, which wakes this worker. It takes every answer noted so far
and decides their response and account rules from the figures of the last
computation (``CycleFigures.answers``: the published figures, never changed, plus
the answers), so it never waits for the scheduler's thread: a cycle's jobs may be
running (a CRM sync, the write-back, a full computation) while it decides. The
alerts it records go to the delivery worker as any others.

The cycle's alerts job still evaluates every rule over every stored response, so
an answer is decided again there (alert ids are keyed: nothing is recorded or sent
twice). That is also what makes a crash harmless: answers are stored before the
webhook's 200, so if the process dies before this worker decided them, the next
cycle's full evaluation (the first of the next process) decides them.

Fenced like every decision path: it decides only while this agent leads, claiming
the leadership epoch first (a standby leaves the answers to the leader, which the
webhook wakes through the database). Before the first computation there are no
figures to decide from: the alerts job is asked to run instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import structlog

from agent.alerts.pipeline import CycleReport
from agent.core.models import Response
from agent.service.runtime import Runtime
from agent.service.worker import Worker
from agent.state.errors import FencedError
from agent.state.history import rule_history
from agent.sync.cycle import evaluate_answers

__all__ = ["AnswersWorker", "decide_answers"]

_log = structlog.get_logger(__name__)


def decide_answers(rt: Runtime, answers: Sequence[Response]) -> CycleReport | None:
    """The alerts of ``answers`` from their own accounts' figures, as of now; None when
    there is nothing to decide from yet (no computation)."""
    if rt.figures is None:
        return None
    return evaluate_answers(
        rt.pipeline,
        rt.figures,
        answers,
        rt.settings.slack.loop_closed_field,
        rt.now(),
        plan=rt.store.survey_plan_summary(rt.crm.name),
        history=rule_history(rt.store, rt.crm.name, rt.settings.history),
    )


class AnswersWorker(Worker):
    """Decides the answers ``runtime`` noted each time it is woken, while ``leading()``;
    answers left at ``stop()`` are stored: the next cycle decides them."""

    def __init__(
        self,
        runtime: Runtime,
        leading: Callable[[], bool],
        claim: Callable[[str], None] = lambda _what: None,
    ) -> None:
        self.runtime = runtime
        self.leading = leading
        self.claim = claim
        self.rounds = 0
        self.last: CycleReport | None = None
        super().__init__("answers")

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait()
            if self._stop.is_set():
                break
            self._wake.clear()  # answers noted from now on wake another round
            if self.leading():
                self.round()

    def round(self) -> CycleReport | None:
        """Decide every answer noted so far; never raises."""
        try:
            self.claim("new answers' alerts")
        except FencedError as exc:  # another agent leads now: its cycle decides them
            _log.warning("answers_fenced", error=str(exc))
            return None
        except Exception as exc:  # the database is unreachable: the cycle decides them
            _log.warning("answers_claim_failed", error=str(exc))
            return None
        answers = self.runtime.take_answers()
        if not answers:
            return None
        try:
            report = decide_answers(self.runtime, answers)
        except Exception:  # the worker must never die; the alerts job decides them
            _log.exception("answers_failed", answers=len(answers))
            self.runtime.trigger("alerts")
            return None
        if report is None:
            _log.info("answers_wait_for_the_cycle", answers=len(answers))
            self.runtime.trigger("alerts")
            return None
        self.rounds += 1
        self.last = report
        return report
