"""Building an in-process agent on a plain-file CRM for tests."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from agent.alerts.model import OutboxAlert, Sent
from agent.config.settings import Settings
from agent.service.process import AgentProcess
from agent.state.leader import leadership_for
from agent.state.store import StateStore
from tests.service.portfolio import Portfolio

RULES = Path(__file__).resolve().parents[2] / "rules"
WEBHOOK_SECRET = "whsec-test-1234"


class RecordingNotifier:
    """A Notifier that keeps what it was asked to send."""

    def __init__(self) -> None:
        self.sent: list[OutboxAlert] = []
        self.attached: list[str] = []
        self.lock = threading.Lock()

    def resolve(self, alert: OutboxAlert) -> str:
        return alert.destination.channel

    def send(self, alert: OutboxAlert, channel_id: str) -> Sent:
        with self.lock:
            self.sent.append(alert)
            return Sent(channel=channel_id, ts=f"1.{len(self.sent)}")

    def find_sent(self, alert: OutboxAlert, channel_id: str) -> Sent | None:
        return None

    def update(self, alert: OutboxAlert, target: Sent) -> Sent:
        with self.lock:
            self.sent.append(alert)
        return target

    def attach(self, alert: OutboxAlert, message: Sent) -> None:
        with self.lock:
            self.attached.append(alert.alert_id)

    def find_attachment(self, alert: OutboxAlert, message: Sent) -> bool:
        with self.lock:
            return alert.alert_id in self.attached

    def rules(self) -> list[str]:
        with self.lock:
            return [a.rule_id for a in self.sent]


def agent_settings(
    tmp_path: Path, *, responses: bool = True, keep_folder: bool = False, **changes: Any
) -> Settings:
    """``keep_folder``: the CRM folder is written only when it is not there yet."""
    folder = tmp_path / "crm"
    if not (keep_folder and folder.is_dir()):
        folder = Portfolio().write_folder(folder, responses=responses)
    values: dict[str, Any] = {
        "crm": "files",
        "files": {"path": folder},
        "state_url": f"sqlite:///{tmp_path / 'state.db'}",
        "rules_dir": RULES,
        "server": {"port": 0},
        "webhook": {"secret": WEBHOOK_SECRET},
        "slack": {"digest_threshold": 1000},
        "schedule": {"grace_seconds": 10, "standby_poll_seconds": 0.2},
    }
    values.update(changes)
    return Settings.model_validate(values)


def build_agent(
    settings: Settings, notifier: RecordingNotifier | None = None, *, dry_run: bool = False
) -> AgentProcess:
    leadership = leadership_for(settings.state_url)
    leadership.acquire(wait=False)
    store = StateStore.open(settings.state_url)
    return AgentProcess(
        settings, store, leadership, dry_run=dry_run, notifier=notifier or RecordingNotifier()
    )


@contextmanager
def leading_agent(settings: Settings, as_of: datetime) -> Iterator[AgentProcess]:
    """An agent at ``as_of`` after its first cycle, leading between cycles as the
    service does; steps down and lets go of the state on exit."""
    leadership = leadership_for(settings.state_url)
    leadership.acquire(wait=False)
    store = StateStore.open(settings.state_url)
    made = AgentProcess(settings, store, leadership, notifier=RecordingNotifier(), as_of=as_of)
    try:
        results = made.run_once()  # the first cycle: everything new
        assert all(r.ok for r in results), [(r.job, r.error) for r in results]
        assert made.lease.try_lead()
        yield made
        made.lease.step_down("stopping")
    finally:
        store.close()
        leadership.release()


def wait_for(condition: Callable[[], object], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.05)


def answer_body(response_id: str, email: str, score: int) -> dict[str, object]:
    """One webhook response, submitted five minutes ago."""
    at = datetime.now(UTC) - timedelta(minutes=5)
    return {
        "response_id": response_id,
        "email": email,
        "score": score,
        "submitted_at": at.isoformat(),
    }
