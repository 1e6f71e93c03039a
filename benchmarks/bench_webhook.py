"""Benchmark: a detractor pushed to the webhook, until Slack receives ``chat.postMessage``.

The agent runs in this process as in production (scheduler thread, waitress server,
SQLite state, the plain-file CRM with a generated portfolio, the real Slack notifier)
against a loopback Slack fake. Each round POSTs one signed response from an
account's executive scoring 2 and waits for the Slack fake to hold the message
whose metadata names that response's alert. The regular cadences are an hour long,
so only the webhook's trigger can deliver within the measured time.

Prints p50 / p95 / max over ``--rounds`` (default 50); the last line is JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/ holds the fakes

from pytest_httpserver import HTTPServer  # after the path set-up above

from agent.config.logging import configure_logging
from agent.config.settings import Settings
from agent.service.process import AgentProcess
from agent.service.signing import sign
from agent.state.leader import leadership_for
from agent.state.store import StateStore
from tests.alerting.fake_slack import TOKEN, FakeSlack
from tests.service.portfolio import Portfolio

SECRET = "bench-webhook-secret"  # noqa: S105  # a throwaway secret of this run
CHANNELS = {
    "cx-alerts": "C0CXALERTS",
    "cx-leadership": "C0LEADERS",
    "account-management": "C0CXALERTS",
    "cx-admin": "C0ADMIN",
}
HOUR = {"every": 3600}
JOBS = ("crm_sync", "survey_ingest", "writeback", "alerts", "escalation", "outbox")


def _settings(root: Path, slack_url: str, accounts: int) -> Settings:
    folder = Portfolio(accounts=accounts, contacts_per_account=5).write_folder(
        root / "crm", responses=False
    )
    return Settings.model_validate(
        {
            "files": {"path": folder},
            "state_url": f"sqlite:///{root / 'state.db'}",
            "rules_dir": Path(__file__).resolve().parent.parent / "rules",
            "server": {"port": 0},
            "webhook": {"secret": SECRET},
            "slack": {"bot_token": TOKEN, "base_url": slack_url, "channels": CHANNELS},
            "schedule": dict.fromkeys(
                ("crm_sync", "survey_ingest", "writeback", "alerts", "escalation", "outbox"), HOUR
            ),
        }
    )


def _post(base: str, body: bytes) -> int:
    headers = {"Content-Type": "application/json", **sign(SECRET, body, time.time())}
    url = f"{base}/webhooks/responses"  # the agent's own loopback server
    request = urllib.request.Request(url, body, headers, method="POST")  # noqa: S310  # http://127.0.0.1
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310  # as above
        return int(response.status)


def _delivered(slack: FakeSlack, alert_id: str) -> bool:
    for messages in list(slack.messages.values()):
        for message in list(messages):
            if message.get("metadata", {}).get("event_payload", {}).get("alert_id") == alert_id:
                return True
    return False


def _round(base: str, slack: FakeSlack, index: int, account: int) -> float:
    rid = f"bench-{index}"
    answer: dict[str, Any] = {
        "response_id": rid,
        "email": f"p0@acct{account}.example",
        "score": 2,
        "submitted_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
        "comment": "Support never answers.",
    }
    body = json.dumps(answer).encode()
    alert_id = f"executive-detractor:webhook/{rid}"
    started = time.perf_counter()
    if _post(base, body) != 200:
        raise RuntimeError("the webhook refused the response")
    deadline = started + 30
    while not _delivered(slack, alert_id):
        if time.perf_counter() > deadline:
            raise RuntimeError(f"{alert_id} did not reach Slack within 30 s")
        time.sleep(0.002)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--accounts", type=int, default=500)
    args = parser.parse_args()
    configure_logging(json=True, level="warning")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the fake's request log
    slack_server = HTTPServer(host="127.0.0.1", port=0)
    slack_server.start()
    slack = FakeSlack(slack_server).install()
    with tempfile.TemporaryDirectory() as tmp:
        settings = _settings(Path(tmp), slack.base_url, args.accounts)
        leadership = leadership_for(settings.state_url)
        leadership.acquire(wait=False)
        agent = AgentProcess(settings, StateStore.open(settings.state_url), leadership)
        thread = threading.Thread(target=lambda: agent.serve(install_signals=False), daemon=True)
        thread.start()
        while "outbox" not in agent.scheduler.last or agent.server is None:
            time.sleep(0.05)
        base = f"http://127.0.0.1:{agent.server.port}"
        seconds = [_round(base, slack, i, 1 + i % args.accounts) for i in range(args.rounds)]
        agent.request_stop()
        thread.join(30)
        agent.store.close()
    slack_server.stop()
    ms = sorted(s * 1000 for s in seconds)
    p50 = statistics.median(ms)
    p95 = ms[max(0, round(0.95 * len(ms)) - 1)]
    print(f"webhook -> Slack chat.postMessage over {len(ms)} detractors ({args.accounts} accounts)")
    print(f"  p50 {p50:8.1f} ms")
    print(f"  p95 {p95:8.1f} ms")
    print(f"  max {ms[-1]:8.1f} ms")
    print(
        json.dumps(
            {
                "benchmark": "webhook_to_slack",
                "rounds": len(ms),
                "accounts": args.accounts,
                "p50_ms": round(p50, 1),
                "p95_ms": round(p95, 1),
                "max_ms": round(ms[-1], 1),
            }
        )
    )


if __name__ == "__main__":
    main()
