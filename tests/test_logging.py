"""Logs are JSON lines (or a console view) and never carry a registered secret."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import datetime

import pytest
import structlog
from pydantic import SecretStr

from agent.config.logging import (
    MASK,
    configure_from_settings,
    configure_logging,
    redact,
    redact_event,
    register_secret,
    register_settings_secrets,
)
from agent.config.settings import Settings
from agent.state.store import StateStore


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    config = structlog.get_config()
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.configure(**config)


def _json_lines(out: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]


@pytest.mark.usefixtures("restore_logging")
def test_json_lines_carry_level_logger_iso_time_and_bound_context() -> None:
    out = io.StringIO()
    configure_logging(json=True, stream=out)
    structlog.get_logger("agent.test").bind(run_id="r-1").info("cycle done", written=3)
    [event] = _json_lines(out)
    assert event["event"] == "cycle done"
    assert (event["level"], event["logger"], event["run_id"], event["written"]) == (
        "info",
        "agent.test",
        "r-1",
        3,
    )
    stamp = datetime.fromisoformat(str(event["timestamp"]).replace("Z", "+00:00"))
    assert stamp.utcoffset() is not None


@pytest.mark.usefixtures("restore_logging")
def test_the_level_filters_events() -> None:
    out = io.StringIO()
    configure_logging(json=True, level="warning", stream=out)
    log = structlog.get_logger("agent.test")
    log.info("quiet")
    log.warning("loud")
    assert [e["event"] for e in _json_lines(out)] == ["loud"]


@pytest.mark.usefixtures("restore_logging")
def test_a_secret_is_masked_wherever_it_appears_in_an_event() -> None:
    secret = 'xoxb-11111-"quoted"\\-secret'
    register_secret(SecretStr(secret))
    out = io.StringIO()
    configure_logging(json=True, stream=out)
    log = structlog.get_logger("agent.test")
    log.info(f"token is {secret}", header={"Authorization": f"Bearer {secret}"}, seq=[secret])
    try:
        raise RuntimeError(f"vendor rejected {secret}")
    except RuntimeError:
        log.exception("call failed")
    logging.getLogger("urllib3.test").warning("GET /?token=%s", secret)
    text = out.getvalue()
    assert "11111" not in text
    events = _json_lines(out)
    assert events[0]["event"] == f"token is {MASK}"
    assert events[0]["header"] == {"Authorization": f"Bearer {MASK}"}
    assert events[0]["seq"] == [MASK]
    assert MASK in str(events[1]["exception"])
    assert events[2]["event"] == f"GET /?token={MASK}"


@pytest.mark.usefixtures("restore_logging")
def test_the_console_view_masks_secrets_too() -> None:
    secret = "console-secret-0d9e7"
    register_secret(secret)
    out = io.StringIO()
    configure_logging(json=False, stream=out)
    log = structlog.get_logger("agent.test")
    log.warning("login", password=secret)
    try:
        raise ValueError(secret)
    except ValueError:
        log.exception("boom")
    text = out.getvalue()
    assert "login" in text
    assert secret not in text
    assert MASK in text
    assert not text.lstrip().startswith("{")


@pytest.mark.usefixtures("restore_logging")
def test_json_is_chosen_when_the_stream_is_not_a_terminal() -> None:
    out = io.StringIO()
    configure_logging(stream=out)
    structlog.get_logger("x").info("hello")
    assert _json_lines(out)[0]["event"] == "hello"


def test_a_secret_in_an_object_repr_is_masked_in_the_rendered_line() -> None:
    secret = "repr-secret-55ab"
    register_secret(secret)

    class Client:
        def __repr__(self) -> str:
            return f"Client(token={secret})"

    out = io.StringIO()
    handler_root = logging.getLogger()
    handlers = list(handler_root.handlers)
    config = structlog.get_config()
    try:
        configure_logging(json=True, stream=out)
        structlog.get_logger("x").info("made", client=Client())
    finally:
        handler_root.handlers[:] = handlers
        structlog.configure(**config)
    assert secret not in out.getvalue()
    assert f"Client(token={MASK})" in out.getvalue()


def test_settings_secrets_are_registered() -> None:
    settings = Settings.model_validate(
        {
            "salesforce": {"password": "sf-pass-77aa", "security_token": "sf-tok-88bb"},
            "hubspot": {"access_token": "pat-na1-99cc"},
            "slack": {"bot_token": "xoxb-slack-00dd"},
        }
    )
    assert register_settings_secrets(settings) == 4
    line = "sf-pass-77aa sf-tok-88bb pat-na1-99cc xoxb-slack-00dd"
    assert redact(line) == " ".join([MASK] * 4)


@pytest.mark.usefixtures("restore_logging")
def test_configure_from_settings_masks_the_state_url_password() -> None:
    settings = Settings.model_validate(
        {
            "state_url": "postgresql+psycopg://ax:pg-pass-41ee@db/ax",
            "log": {"format": "json", "level": "debug"},
        }
    )
    out = io.StringIO()
    configure_from_settings(settings, stream=out)
    structlog.get_logger("x").debug("url", url=settings.state_url)
    assert _json_lines(out)[0]["url"] == f"postgresql+psycopg://ax:{MASK}@db/ax"


def test_opening_a_store_registers_its_password(tmp_path: object) -> None:
    with pytest.raises(Exception, match="cannot use state database"):
        StateStore.open("postgresql://ax:open-pass-62ff@127.0.0.1:1/ax?connect_timeout=1")
    assert redact("open-pass-62ff") == MASK


def test_escaped_forms_of_a_secret_are_masked() -> None:
    secret = "p@ss wörd/+&"
    register_secret(secret)
    assert redact(json.dumps({"x": secret})) == json.dumps({"x": MASK})
    assert redact(json.dumps({"x": secret}, ensure_ascii=False)) == json.dumps({"x": MASK})
    assert redact("https://h/?t=p%40ss%20w%C3%B6rd%2F%2B%26") == f"https://h/?t={MASK}"
    assert redact("t=p%40ss+w%C3%B6rd%2F%2B%26") == f"t={MASK}"


def test_empty_secrets_are_ignored() -> None:
    register_secret("")
    register_secret("   ")
    register_secret(None)
    assert redact("nothing to hide") == "nothing to hide"


def test_the_processor_masks_keys_and_nested_values() -> None:
    register_secret("proc-secret-12")
    event = {"event": "x", "proc-secret-12": ("a", {"k": ["proc-secret-12"]})}
    assert redact_event(None, "info", event) == {"event": "x", MASK: ("a", {"k": [MASK]})}


def test_an_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown log level"):
        configure_logging(level="chatty")
