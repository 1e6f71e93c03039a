"""Agent subprocesses for the crash, fault and replica tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.service.stack import agent_command, secrets_file


def env(config: Path | None = None) -> dict[str, str]:
    """The test's environment without any AX_ setting: the config file and its secrets
    file (written beside it by ``write_config``) say everything."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AX_")}
    if config is not None and secrets_file(config).is_file():
        clean["AX_SECRETS_FILE"] = str(secrets_file(config))
    return clean


def start(config: Path, *args: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as handle:  # the child keeps its own copy of the descriptor
        return subprocess.Popen(
            agent_command(config, *args),
            stdout=handle,
            stderr=subprocess.STDOUT,
            env=env(config),
            cwd=config.parent,
        )


def run_once(config: Path, log: Path, timeout: float = 180) -> int:
    proc = start(config, "--once", log=log)
    return proc.wait(timeout)


def converge(config: Path, log: Path, attempts: int = 8) -> int:
    """Run ``--once`` until a run succeeds; how many runs it took."""
    for attempt in range(1, attempts + 1):
        if run_once(config, log) == 0:
            return attempt
    raise AssertionError(f"no clean run in {attempts} attempts; see {log}")


def killer(proc_ref: dict[str, Any], match: Callable[[Any], bool], at: int) -> Callable[..., None]:
    """A tap hook that SIGKILLs ``proc_ref['proc']`` at the ``at``-th matching request."""
    seen = {"n": 0}

    def hook(request: Any, _reply: Any) -> None:
        if not match(request):
            return
        seen["n"] += 1
        proc = proc_ref.get("proc")
        if seen["n"] == at and proc is not None and proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)  # dead before the fake answers

    return hook


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Callable[[], object], timeout: float, what: str) -> float:
    """Seconds it took for ``condition`` to hold; fails after ``timeout``."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"{what}: not within {timeout} s")
        time.sleep(0.1)
    return time.monotonic() - started
