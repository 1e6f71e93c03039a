"""Run the delivery stage and die (SIGKILL) right after Slack accepted something.

Used by the crash tests: ``python crash_child.py STATE_URL SLACK_BASE_URL TOKEN [MODE]``.
MODE ``send`` (default): die after the second message; ``attach``: after the first
attachment (the weekly digest's chart) was shared.
"""

from __future__ import annotations

import os
import signal
import sys
from datetime import UTC, datetime

from sqlalchemy import create_engine

from agent.alerts.deliver import deliver
from agent.alerts.model import OutboxAlert, Sent
from agent.alerts.repo import AlertRepo
from agent.config.settings import SlackSettings
from agent.report.digest import driver_chart
from connectors.slack.notifier import SlackNotifier, make_client


class DiesAfterSecondSend(SlackNotifier):
    sends = 0

    def send(self, alert: OutboxAlert, channel_id: str) -> Sent:
        sent = super().send(alert, channel_id)
        self.sends += 1
        if self.sends == 2:
            os.kill(os.getpid(), signal.SIGKILL)  # between "Slack answered" and "marked sent"
        return sent


class DiesAfterAttach(SlackNotifier):
    def attach(self, alert: OutboxAlert, message: Sent) -> None:
        super().attach(alert, message)
        os.kill(os.getpid(), signal.SIGKILL)  # between "Slack shared the chart" and "marked sent"


def main() -> None:
    state_url, base_url, token = sys.argv[1:4]
    mode = sys.argv[4] if len(sys.argv) > 4 else "send"
    repo = AlertRepo(create_engine(state_url))
    settings = SlackSettings(bot_token=token, base_url=base_url, max_retries=0)  # type: ignore[arg-type]
    kind = DiesAfterAttach if mode == "attach" else DiesAfterSecondSend
    deliver(repo, kind(make_client(settings), draw_chart=driver_chart), datetime.now(UTC))


if __name__ == "__main__":
    main()
