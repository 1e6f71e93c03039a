"""A claimed batch of posts, sent channel by channel, the channels side by side.

Slack limits ``chat.postMessage`` per channel: posts to one channel go out one after
the other, in the order they were recorded, but need not wait for another channel's.
Each channel is a lane; several lanes run at once in a small thread pool, each
waiting only for its own channel's limit. Right before each send ``confirm`` checks
that this agent still leads (it raises ``FencedError`` otherwise, and every lane
stops), so a batch claimed together is still fenced send by send. A lane stops
before its next send when ``halted`` says so (the drain deadline) or when any lane
met a vendor outage; what it never started is handed back as unsent, so its claim
can be released.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field
from datetime import datetime

from agent.alerts.model import OutboxAlert, Sent
from agent.core.ports import Notifier
from connectors.common.errors import FatalError, RetriableError

__all__ = ["LaneResult", "Outcome", "send_lanes"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """One send: its message and when it went out, or the vendor's error."""

    alert: OutboxAlert
    sent: Sent | None = None
    sent_at: datetime | None = None
    error: RetriableError | FatalError | None = None


@dataclass(slots=True)
class LaneResult:
    #: Every send tried, lane by lane, each lane in its order.
    outcomes: list[Outcome] = field(default_factory=list)
    #: Claimed alerts whose send never started.
    unsent: list[OutboxAlert] = field(default_factory=list)


def send_lanes(
    pool: Executor,
    notifier: Notifier,
    lanes: Mapping[str, Sequence[OutboxAlert]],
    *,
    stamp: Callable[[], datetime],
    halted: Callable[[], bool],
    confirm: Callable[[OutboxAlert], None],
) -> LaneResult:
    """Send each lane's alerts in order, the lanes at once (one lane: in this thread)."""
    outage = threading.Event()
    lane = _Lane(notifier, stamp, lambda: outage.is_set() or halted(), confirm, outage)
    result = LaneResult()
    if len(lanes) == 1:
        ((channel, alerts),) = lanes.items()
        parts = [lane.send(channel, alerts)]
    else:
        futures = [pool.submit(lane.send, channel, alerts) for channel, alerts in lanes.items()]
        parts = [f.result() for f in futures]
    for done, unsent in parts:
        result.outcomes.extend(done)
        result.unsent.extend(unsent)
    return result


@dataclass(frozen=True, slots=True)
class _Lane:
    notifier: Notifier
    stamp: Callable[[], datetime]
    stop: Callable[[], bool]
    confirm: Callable[[OutboxAlert], None]
    outage: threading.Event

    def send(
        self, channel: str, alerts: Sequence[OutboxAlert]
    ) -> tuple[list[Outcome], list[OutboxAlert]]:
        """One channel's alerts in order, until the end or a stop."""
        done: list[Outcome] = []
        for index, alert in enumerate(alerts):
            if self.stop():
                return done, list(alerts[index:])
            try:
                self.confirm(alert)
                sent = self.notifier.send(alert, channel)
            except RetriableError as exc:  # an outage: every lane stops before its next send
                self.outage.set()
                done.append(Outcome(alert, error=exc))
                return done, list(alerts[index + 1 :])
            except FatalError as exc:  # Slack refused this one message; the lane goes on
                done.append(Outcome(alert, error=exc))
                continue
            except Exception:
                self.outage.set()  # fenced, or a bug: every lane stops, the caller raises
                raise
            done.append(Outcome(alert, sent=sent, sent_at=self.stamp()))
        return done, []
