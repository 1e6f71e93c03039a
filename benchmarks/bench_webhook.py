"""Benchmark: a detractor pushed to the webhook, until Slack receives ``chat.postMessage``.

The real ``ax-agent run`` (the long-running service) runs as a subprocess: its
configuration file in a temporary folder (the plain-file CRM with a generated
portfolio, SQLite state, the loopback Slack fake of this process as its Slack Web
API), the bot token and the webhook secret in its environment. Each round POSTs one
signed response from an account's executive scoring 2 to the agent's webhook and
waits for the Slack fake to hold the message whose metadata names that response's
alert. Every job runs every hour (``--during-cycle``: every ``--cycle-every``
seconds), so only the webhook's own path can deliver within the measured time.

Before the agent starts, ``--responses`` answers (default 0) are written into its
state, spread over the portfolio's contacts and the last 300 days, as an agent that
has been running for a while holds them: at 50,000 accounts and 1,000,000 stored
responses the first cycle computes the whole portfolio, and each detractor after it
must not. The rounds start in the steady state: once the first cycle's own posts
(escalations and updates of the stored history, sent at ``--post-per-second`` per
channel, default 20, and chat.update at 50 a minute) are out; a detractor recorded
behind such a backlog waits for it (delivery is oldest first). ``--settle-backlog``
marks that backlog sent instead, as an agent running for a while sent it long ago
(at 50,000 accounts it holds thousands of updates: over an hour at Slack's pace): one
UPDATE of the outbox from this process while the agent runs (``_steady`` says why
that is safe).

``--during-cycle`` measures while a full cycle runs instead: the agent's second
regular cycle, every job once more at its interval (``--cycle-every``, default 300 s,
counted from each job's first run), after this process raised every account's revenue
by 1 % in the CRM's ``accounts.csv`` (a book-wide ARR update): its CRM sync reads
every account as changed, so the first job that computes (the tasks job, then the
write-back, the alerts and escalation jobs) recomputes every account's figures
(``figures_refreshed`` with ``full`` true, as the agent's log shows; the responses
stay matched as before, they are not reloaded from the state), the write-back
compares every account's history, and the alerts job evaluates every rule over every
stored answer. The rounds run from that cycle's start to its end, one detractor every
``--round-every`` seconds (default 0.25, under Slack's per-channel pace), at least
``--rounds``. The answers worker decides each from the last published figures beside
the cycle's jobs; what a round may still wait for: the state database's write lock
while a job commits, the interpreter shared with the cycle's computation, delivery
behind posts the cycle recorded first. The cycle's jobs (time, counts) and its
computations are printed after the figures.

    python benchmarks/bench_webhook.py --accounts 50000 --responses 1000000 --settle-backlog
    python benchmarks/bench_webhook.py --accounts 50000 --responses 1000000 --settle-backlog \
        --during-cycle --cycle-every 400

Prints p50 / p95 / p99 / max over the rounds (default 50); the last line is JSON.

``--burst N`` measures delivery under load instead (``burst_main``): the agent
takes ``N`` (default 2,000) signed detractor webhooks at ``--concurrency`` (default
20). Every answer must be stored and every alert reach ``chat.postMessage``; the
figure is recorded (outbox) -> posted, p99, next to the bound Slack's per-channel
rate limit (``--post-per-second``) forces on the same recorded times: the agent's own
limiter replayed, channel by channel, over every message posted there. Target: p99
at most 2 s above that bound.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests/ holds the fakes

from pytest_httpserver import HTTPServer  # after the path set-up above
from sqlalchemy import Engine, create_engine, func, select, update

from agent.config.logging import configure_logging
from agent.config.service import JOB_NAMES
from agent.core.models import Response
from agent.service.signing import sign
from agent.state.schema import alert_outbox, cycles
from agent.state.store import StateStore
from connectors.slack.limits import SlackLimits
from tests.alerting.fake_slack import TOKEN, FakeSlack
from tests.service.portfolio import Portfolio
from tests.service.stack import agent_command

SECRET = "bench-webhook-secret"  # noqa: S105  # a throwaway secret of this run
CHANNELS = {
    "cx-alerts": "C0CXALERTS",
    "cx-leadership": "C0LEADERS",
    "account-management": "C0CXALERTS",
    "cx-admin": "C0ADMIN",
}


def _agent_config(
    root: Path, folder: Path, slack: dict[str, Any], every: float, state_url: str
) -> Path:
    """The agent's configuration file (JSON, which YAML reads) for the files CRM in
    ``folder``: every job ``every`` seconds, from the start; secrets come from the
    environment (``_start_agent``)."""
    config = {
        "crm": "files",
        "files": {"path": str(folder)},
        "state_url": state_url,
        "rules_dir": str(Path(__file__).resolve().parent.parent / "rules"),
        "server": {"port": _free_port()},
        "slack": {"channels": CHANNELS, **slack},
        "schedule": {**{job: {"every": every} for job in JOB_NAMES}, "grace_seconds": 30},
    }
    path = root / "ax.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


def _start_agent(config: Path, log: Path) -> subprocess.Popen[bytes]:
    """``ax-agent run --config config`` (the console script's entry point, run by this
    interpreter), the bot token and the webhook secret in its environment, its log in
    ``log``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AX_")}
    env.update(AX_SLACK__BOT_TOKEN=TOKEN, AX_WEBHOOK__SECRET=SECRET)
    with log.open("wb") as out:
        return subprocess.Popen(  # noqa: S603  # the agent's own command
            agent_command(config),
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def _running(proc: subprocess.Popen[bytes], log: Path) -> bool:
    """True while the agent runs; RuntimeError with its log's end once it stopped."""
    if proc.poll() is None:
        return True
    tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-20:]
    raise RuntimeError(f"the agent exited with {proc.returncode}:\n" + "\n".join(tail))


def _stop_agent(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (a graceful stop), then SIGKILL if it outlives its grace period."""
    proc.terminate()
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


class _Posts:
    """What the Slack fake's ``chat.postMessage`` took: alert id -> when (wall clock,
    once the fake stored the message) and which channel."""

    def __init__(self, slack: FakeSlack) -> None:
        self.at: dict[str, float] = {}
        self.channel: dict[str, str] = {}
        self._seen = threading.Condition()
        original = slack._chat_postMessage

        def posted(args: dict[str, Any]) -> Any:
            answer = original(args)
            meta = (args.get("metadata") or {}).get("event_payload") or {}
            alert_id = str(meta.get("alert_id"))
            with self._seen:
                self.at.setdefault(alert_id, time.time())
                self.channel.setdefault(alert_id, str(args.get("channel")))
                self._seen.notify_all()
            return answer

        slack._chat_postMessage = posted  # type: ignore[method-assign]

    def wait(self, alert_id: str, deadline: float) -> float:
        """When ``alert_id`` was posted; RuntimeError past ``deadline`` (wall clock)."""
        with self._seen:
            while alert_id not in self.at:
                left = deadline - time.time()
                if left <= 0:
                    raise RuntimeError(f"{alert_id} did not reach Slack in time")
                self._seen.wait(left)
            return self.at[alert_id]


def _store_responses(state_url: str, count: int, accounts: int, per_account: int) -> None:
    """``count`` answers from the portfolio's contacts over the last 300 days, stored in
    bulk into the state before the agent starts (the state is created here)."""
    now = datetime.now(UTC)
    store = StateStore.open(state_url)
    try:
        batch: list[Response] = []
        for k in range(count):
            account, person = 1 + k % accounts, (k // accounts) % per_account
            batch.append(
                Response(
                    response_id=f"old-{k}",
                    email=f"p{person}@acct{account}.example",
                    score=(k * 7) % 11,
                    submitted_at=now - timedelta(minutes=10 + (k * 37) % (300 * 24 * 60)),
                    driver=("Support", "Product", "Pricing")[k % 3],
                    loop_closed_at=now - timedelta(minutes=5) if k % 4 == 0 else None,
                    source="history",
                )
            )
            if len(batch) == 50_000:
                store.add_responses(batch)
                batch = []
        store.add_responses(batch)
    finally:
        store.close()


def _post(base: str, body: bytes) -> int:
    headers = {"Content-Type": "application/json", **sign(SECRET, body, time.time())}
    url = f"{base}/webhooks/responses"  # the agent's own loopback server
    request = urllib.request.Request(url, body, headers, method="POST")  # noqa: S310  # http://127.0.0.1
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310  # as above
        return int(response.status)


def _round(base: str, posts: _Posts, index: int, account: int, wait: float = 30) -> float:
    rid = f"bench-{index}"
    answer: dict[str, Any] = {
        "response_id": rid,
        "email": f"p0@acct{account}.example",
        "score": 2,
        "submitted_at": (datetime.now(UTC) - timedelta(minutes=1)).isoformat(),
        "comment": "Support never answers.",
    }
    body = json.dumps(answer).encode()
    started = time.time()
    if _post(base, body) != 200:
        raise RuntimeError("the webhook refused the response")
    return posts.wait(f"executive-detractor:webhook/{rid}", started + wait) - started


# -- the agent's state, read (and, for --settle-backlog, the outbox written) from outside


def _runs(state: Engine, job: str) -> list[Any]:
    """``job``'s runs in the cycles log, oldest first."""
    with state.connect() as conn:
        return list(conn.execute(select(cycles).where(cycles.c.job == job).order_by(cycles.c.id)))


def _ended(state: Engine, job: str, runs: int) -> bool:
    """Whether ``job`` has run ``runs`` times, the last of them finished."""
    done = _runs(state, job)
    return len(done) >= runs and done[runs - 1].status != "running"


def _pending(state: Engine) -> int:
    with state.connect() as conn:
        query = select(func.count()).where(alert_outbox.c.status == "pending")
        return int(conn.execute(query).scalar_one())


def _quiet(slack: FakeSlack, seconds: float) -> None:
    """Until the Slack fake has had no call for ``seconds``."""
    count = -1
    while count != len(slack.calls):
        count = len(slack.calls)
        time.sleep(seconds)


def _steady(state: Engine, slack: FakeSlack, per_second: float, *, settle: bool) -> None:
    """Wait for the steady state: the first cycle's own posts (escalations and updates
    of the stored history) are out, so each detractor waits for nothing but its path.

    ``settle``: that backlog is marked sent instead (an agent running for a while sent
    its first cycle's posts long ago), by one UPDATE of the outbox from this process
    while the agent runs. That is safe with the agent's transactions: SQLite takes
    one writer at a time; the delivery worker claims each row (still pending) in a
    transaction of its own right before its send, so what it claimed before the UPDATE
    (at most the batch in hand and the one claimed ahead) still goes out once, marked
    sent again, and a row marked sent is never claimed again."""
    started = time.perf_counter()
    with state.connect() as conn:
        kinds = conn.execute(
            select(alert_outbox.c.kind, func.count())
            .where(alert_outbox.c.status == "pending")
            .group_by(alert_outbox.c.kind)
        ).all()
    backlog = ", ".join(f"{n:,} {kind}" for kind, n in kinds) or "none"
    if settle:
        with state.begin() as conn:
            conn.execute(
                update(alert_outbox)
                .where(alert_outbox.c.status == "pending")
                .values(status="sent", sent_at=datetime.now(UTC))
            )
    while _pending(state):
        time.sleep(0.5)
    _quiet(slack, 1.0)  # the worker's sends in hand are over
    done = "marked sent" if settle else f"out at {per_second:g}/s per channel"
    print(
        f"first cycle's pending posts ({backlog}) {done} in {time.perf_counter() - started:.0f} s"
    )


# -- the full cycle of --during-cycle ----------------------------------------------------


def _change_every_account(folder: Path) -> int:
    """Every account's revenue up 1 % in the CRM's ``accounts.csv`` (a book-wide ARR
    update), the file replaced whole as an export would; returns the accounts changed."""
    path = folder / "accounts.csv"
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        fields, rows = list(reader.fieldnames or ()), list(reader)
    for row in rows:
        row["revenue"] = str(int(row["revenue"]) * 101 // 100)
    written = path.with_name("accounts.csv.new")
    with written.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fields)
        writer.writeheader()
        writer.writerows(rows)
    os.replace(written, path)
    return len(rows)


def _describe_cycle(state: Engine, log: Path, changed_at: float) -> None:
    """The second cycle's jobs (cycles log) and its computations (the agent's log)."""
    for job in JOB_NAMES:
        runs = _runs(state, job)
        if len(runs) < 2:
            continue
        run = runs[1]
        took = (run.finished_at - run.started_at).total_seconds() if run.finished_at else 0
        counts = {k: v for k, v in (run.counts or {}).items() if v}
        print(f"  {job}: {took:.1f} s {json.dumps(counts)}")
    for line in log.read_text(encoding="utf-8", errors="replace").splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue
        if event.get("event") != "figures_refreshed":
            continue
        at = datetime.fromisoformat(str(event.get("timestamp"))).timestamp()
        if at >= changed_at:
            print(
                f"  figures refreshed: full={event.get('full')}, "
                f"{event.get('accounts'):,} accounts recomputed ({event.get('job')})"
            )


def _during_cycle(
    state: Engine, base: str, posts: _Posts, args: argparse.Namespace, folder: Path
) -> list[float]:
    """Rounds from the start of the agent's second regular cycle to its end (at least
    ``--rounds``), one every ``--round-every`` seconds; a round held up by the cycle is
    measured, not failed (an hour is allowed)."""
    if len(_runs(state, "crm_sync")) > 1:
        raise RuntimeError("the second cycle began before the CRM changed: raise --cycle-every")
    changed_at = time.time()
    accounts = _change_every_account(folder)
    print(f"every account's revenue changed in the CRM ({accounts:,}); waiting for the cycle")
    _wait(lambda: len(_runs(state, "crm_sync")) > 1, args.cycle_every + 600, "the second cycle")
    if _runs(state, "crm_sync")[1].started_at.timestamp() < changed_at:
        raise RuntimeError("the second cycle began before the CRM changed: raise --cycle-every")
    started = time.time()
    seconds: list[float] = []
    began_at: list[float] = []
    ended, looked = False, 0.0
    while not ended or len(seconds) < args.rounds:
        began = time.time()
        began_at.append(began)
        seconds.append(_round(base, posts, len(seconds), 1 + len(seconds) % args.accounts, 3600))
        if not ended and time.time() - looked > 0.5:
            ended, looked = _ended(state, JOB_NAMES[-1], 2), time.time()
            if ended:
                print(
                    f"the cycle ran {time.time() - started:.0f} s; {len(seconds)} rounds during it"
                )
        time.sleep(max(0.0, args.round_every - (time.time() - began)))
    _trace("rounds.json", json.dumps(list(zip(began_at, seconds, strict=True))))
    _describe_cycle(state, args.log, changed_at)
    _slowest(state, list(zip(began_at, seconds, strict=True)), started)
    return seconds


def _trace(name: str, text: str) -> None:
    """Opt-in, for profiling the agent: with ``BENCH_TRACE_DIR`` set, ``text`` is
    written to ``name`` in that folder (the agent's pid as it starts, the rounds'
    start times and durations once measured), to line a sampler's output up with them."""
    folder = os.environ.get("BENCH_TRACE_DIR")
    if folder:
        Path(folder, name).write_text(text, encoding="utf-8")


def _slowest(state: Engine, rounds: list[tuple[float, float]], started: float) -> None:
    """The five slowest rounds: when they began, and which of the cycle's jobs ran."""
    spans = [
        (r.started_at.timestamp(), r.finished_at, r.job)
        for j in JOB_NAMES
        for r in _runs(state, j)[1:2]
    ]
    for began, took in sorted(rounds, key=lambda r: -r[1])[:5]:
        jobs = [
            job
            for at, end, job in spans
            if at <= began + took and (end is None or end.timestamp() >= began)
        ]
        print(
            f"  a round of {took * 1000:,.0f} ms at +{began - started:.1f} s, "
            f"during {', '.join(jobs) or 'no job'}"
        )


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--accounts", type=int, default=500)
    parser.add_argument("--burst", type=int, default=0, help="burst mode: this many webhooks")
    parser.add_argument("--concurrency", type=int, default=20)
    parser.add_argument("--post-per-second", type=float, default=20.0)
    parser.add_argument("--contacts-per-account", type=int, default=5)
    parser.add_argument("--responses", type=int, default=0, help="answers stored beforehand")
    parser.add_argument(
        "--settle-backlog",
        action="store_true",
        help="mark the first cycle's posts sent instead of waiting for Slack's pace",
    )
    parser.add_argument(
        "--during-cycle",
        action="store_true",
        help="measure during the agent's second cycle, every account changed in the CRM",
    )
    parser.add_argument(
        "--cycle-every",
        type=float,
        default=300.0,
        help="--during-cycle: every job's interval (the second cycle starts this long "
        "after the first; it must leave time for the first cycle and the backlog)",
    )
    parser.add_argument(
        "--round-every",
        type=float,
        default=0.25,
        help="--during-cycle: a detractor this often (seconds) while the cycle runs",
    )
    parser.add_argument("--agent-log", type=Path, help="keep the agent's log (JSON lines) here")
    return parser.parse_args()


def main() -> None:
    args = _arguments()
    if args.burst:
        burst_main(args.burst, args.concurrency, args.post_per_second)
        return
    configure_logging(json=True, level="warning")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # the fake's request log
    slack_server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    slack_server.start()
    slack = FakeSlack(slack_server).install()
    posts = _Posts(slack)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = Portfolio(
            accounts=args.accounts, contacts_per_account=args.contacts_per_account
        ).write_folder(root / "crm", responses=False)
        state_url = f"sqlite:///{root / 'state.db'}"
        every = args.cycle_every if args.during_cycle else 3600.0
        slack_config = {"base_url": slack.base_url, "post_per_second": args.post_per_second}
        config = _agent_config(root, folder, slack_config, every, state_url)
        started = time.perf_counter()
        if args.responses:
            per_account = args.contacts_per_account
            _store_responses(state_url, args.responses, args.accounts, per_account)
            print(f"stored {args.responses:,} responses in {time.perf_counter() - started:.0f} s")
        args.log = root / "agent.log"
        proc = _start_agent(config, args.log)
        _trace("agent.pid", str(proc.pid))
        state = create_engine(state_url, connect_args={"timeout": 60})
        try:
            base = f"http://127.0.0.1:{json.loads(config.read_text())['server']['port']}"
            started = time.perf_counter()
            _wait(lambda: _running(proc, args.log) and _ready(base), 600, "the agent's start")
            first = lambda: _running(proc, args.log) and _ended(state, JOB_NAMES[-1], 1)  # noqa: E731
            _wait(first, 3600, "the agent's first cycle")
            print(f"first cycle done in {time.perf_counter() - started:.0f} s")
            _steady(state, slack, args.post_per_second, settle=args.settle_backlog)
            if args.during_cycle:
                seconds = _during_cycle(state, base, posts, args, folder)
            else:
                seconds = [
                    _round(base, posts, i, 1 + i % args.accounts) for i in range(args.rounds)
                ]
        finally:
            _stop_agent(proc)
            state.dispose()
            if args.agent_log is not None:
                shutil.copyfile(args.log, args.agent_log)
        _report(seconds, args)
    slack_server.stop()


def _report(seconds: list[float], args: Any) -> None:
    ms = sorted(s * 1000 for s in seconds)
    p50 = statistics.median(ms)
    p95 = ms[max(0, round(0.95 * len(ms)) - 1)]
    p99 = ms[max(0, round(0.99 * len(ms)) - 1)]
    print(
        f"webhook -> Slack chat.postMessage over {len(ms)} detractors "
        f"({args.accounts:,} accounts, {args.responses:,} stored responses)"
    )
    print(f"  p50 {p50:8.1f} ms")
    print(f"  p95 {p95:8.1f} ms")
    print(f"  p99 {p99:8.1f} ms (target ≤ 500 ms at 50,000 accounts, 1,000,000 responses)")
    print(f"  max {ms[-1]:8.1f} ms")
    print(
        json.dumps(
            {
                "benchmark": "webhook_to_slack",
                "rounds": len(ms),
                "accounts": args.accounts,
                "stored_responses": args.responses,
                "p50_ms": round(p50, 1),
                "p95_ms": round(p95, 1),
                "p99_ms": round(p99, 1),
                "max_ms": round(ms[-1], 1),
            }
        )
    )


# -- burst mode ------------------------------------------------------------------------


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(share * len(ordered)) - 1)]


def forced_posts(recorded: list[float], per_second: float) -> list[float]:
    """The earliest times one channel's limit lets messages recorded at ``recorded``
    (sorted) be posted, oldest first: the agent's own limiter (``SlackLimits``' token
    bucket, ``per_second`` with a burst of one second's worth) replayed on a clock that
    jumps to each recorded time and sleeps exactly as long as it is told."""
    clock = [0.0]

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    bucket = SlackLimits(post_per_second=per_second).post_bucket(lambda: clock[0], sleep)
    posted: list[float] = []
    for at in recorded:
        clock[0] = max(clock[0], at)
        bucket.acquire()
        posted.append(clock[0])
    return posted


def forced_by_channel(
    recorded: dict[str, float], channel_of: dict[str, str], per_second: float
) -> dict[str, float]:
    """Each posted alert's earliest post time: every channel has a limit of its own."""
    channels: dict[str, list[tuple[float, str]]] = {}
    for alert_id, channel in channel_of.items():
        if alert_id in recorded:
            channels.setdefault(channel, []).append((recorded[alert_id], alert_id))
    forced: dict[str, float] = {}
    for rows in channels.values():
        rows.sort()
        times = forced_posts([t for t, _ in rows], per_second)
        forced.update(zip([a for _, a in rows], times, strict=True))
    return forced


def achieved_rate(posted: list[float]) -> float:
    """Posts a second on one channel, first post to last."""
    if len(posted) < 2:
        return 0.0
    ordered = sorted(posted)
    return (len(ordered) - 1) / max(ordered[-1] - ordered[0], 1e-9)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _send_all(base: str, bodies: list[bytes], concurrency: int) -> list[int]:
    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(lambda body: _post(base, body), bodies))


def burst_main(count: int, concurrency: int, per_second: float) -> None:
    """Delivery under load: ``count`` detractor webhooks at ``concurrency``, one agent."""
    configure_logging(json=True, level="warning")
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    slack_server = HTTPServer(host="127.0.0.1", port=0, threaded=True)
    slack_server.start()
    slack = FakeSlack(slack_server).install()
    posts = _Posts(slack)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = Portfolio(accounts=count, contacts_per_account=3).write_folder(
            root / "crm", responses=False
        )
        state_url = f"sqlite:///{root / 'state.db'}"
        slack_config = {
            "base_url": slack.base_url,
            "digest_threshold": 1_000_000,
            "post_per_second": per_second,
        }
        config = _agent_config(root, folder, slack_config, 3600.0, state_url)
        port = json.loads(config.read_text())["server"]["port"]
        proc = _start_agent(config, root / "agent.log")
        base = f"http://127.0.0.1:{port}"
        try:
            _wait(lambda: _ready(base), 120, "the agent's first pass")
            submitted = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
            ids = [f"burst-{i}" for i in range(count)]
            bodies = [
                json.dumps(
                    {
                        "response_id": rid,
                        "email": f"p0@acct{i + 1}.example",
                        "score": 2,
                        "submitted_at": submitted,
                        "comment": "Support never answers.",
                    }
                ).encode()
                for i, rid in enumerate(ids)
            ]
            started = time.monotonic()
            statuses = _send_all(base, bodies, concurrency)
            sent_in = time.monotonic() - started
            wanted = {f"executive-detractor:webhook/{rid}" for rid in ids}
            limit = 3 * count / per_second + 300  # account alerts share the channel
            _wait(lambda: wanted <= set(posts.at), limit, "every alert in Slack")
        finally:
            _stop_agent(proc)
        store = StateStore.open(state_url)
        with store.engine.connect() as conn:
            rows = conn.execute(
                select(alert_outbox.c.alert_id, alert_outbox.c.created_at, alert_outbox.c.channel)
            ).all()
        stored = store.count_responses()
        store.close()
    slack_server.stop()
    _report_burst(
        count,
        concurrency,
        per_second,
        {"statuses": statuses, "stored": stored, "sent_in": sent_in},
        recorded={r.alert_id: r.created_at.timestamp() for r in rows},
        posted_at=dict(posts.at),
        channel_of=dict(posts.channel),
        wanted=wanted,
    )


def _report_burst(  # the figures of one run, named
    count: int,
    concurrency: int,
    per_second: float,
    run: dict[str, Any],
    *,
    recorded: dict[str, float],
    posted_at: dict[str, float],
    channel_of: dict[str, str],
    wanted: set[str],
) -> None:
    statuses, stored, sent_in = run["statuses"], run["stored"], run["sent_in"]
    # Everything posted to a channel shares its limit (account alerts too); each
    # channel has its own.
    forced = forced_by_channel(recorded, channel_of, per_second)
    latency = [posted_at[a] - recorded[a] for a in wanted]
    bound = [forced[a] - recorded[a] for a in wanted]
    excess = [posted_at[a] - forced[a] for a in wanted]
    busiest = Counter(channel_of.values()).most_common(1)[0][0]
    on_busiest = [posted_at[a] for a, c in channel_of.items() if c == busiest]
    figures = {
        "benchmark": "webhook_burst_to_slack",
        "webhooks": count,
        "concurrency": concurrency,
        "accepted": statuses.count(200),
        "stored": stored,
        "alerts_posted": len(wanted & set(posted_at)),
        "posts_total": len(posted_at),
        "channels": len(set(channel_of.values())),
        "post_per_second": per_second,
        "achieved_posts_per_second": round(achieved_rate(on_busiest), 2),
        "webhooks_seconds": round(sent_in, 2),
        "p50_s": round(statistics.median(latency), 3),
        "p95_s": round(_percentile(latency, 0.95), 3),
        "p99_s": round(_percentile(latency, 0.99), 3),
        "rate_limit_bound_p99_s": round(_percentile(bound, 0.99), 3),
        "p99_above_bound_s": round(_percentile(excess, 0.99), 3),
        "target_above_bound_s": 2.0,
    }
    print(f"{count} signed detractor webhooks at concurrency {concurrency}")
    print(f"  accepted {figures['accepted']}, stored {stored}, posted {figures['alerts_posted']}")
    print(
        f"  {len(posted_at)} posts over {figures['channels']} channel(s); the busiest took "
        f"{len(on_busiest)} at {figures['achieved_posts_per_second']}/s (limit {per_second:g}/s)"
    )
    print(
        f"  recorded -> chat.postMessage p50 {figures['p50_s']} s, p95 {figures['p95_s']} s, "
        f"p99 {figures['p99_s']} s"
    )
    print(
        f"  Slack's limit ({per_second:g}/s per channel) forces p99 "
        f"{figures['rate_limit_bound_p99_s']} s; p99 above that bound "
        f"{figures['p99_above_bound_s']} s (target <= 2 s)"
    )
    print(json.dumps(figures))


def _ready(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/readyz", timeout=2) as response:  # noqa: S310  # loopback
            return bool(json.loads(response.read()).get("role") == "leader")
    except OSError:
        return False
    except ValueError:
        return False


def _wait(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.2)


if __name__ == "__main__":
    main()
