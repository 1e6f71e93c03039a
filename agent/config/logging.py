"""Structured logs: JSON lines in production, a readable console on a terminal, no secrets.

Every log line, ours (structlog) and libraries' (stdlib ``logging``: Alembic,
SQLAlchemy, urllib3 …), goes through one handler and one processor chain, so the
same format and the same redaction apply to all of it. Secrets are registered once
(from the settings' ``SecretStr`` fields, the state URL's password, or explicitly)
and masked twice: in every value of the event, and again in the rendered line, so
neither an escaped form nor a traceback can carry one out. The masking itself is
``agent.core.redaction``, the one step every other output path uses too.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable
from typing import Literal, TextIO

import structlog
from pydantic import BaseModel, SecretBytes, SecretStr
from structlog.typing import EventDict, Processor, WrappedLogger

from agent.config.settings import Settings
from agent.core.redaction import MASK, redact, redact_value, register_secret_text

__all__ = [
    "MASK",
    "LogLevel",
    "configure_from_settings",
    "configure_logging",
    "redact",
    "redact_event",
    "register_secret",
    "register_settings_secrets",
    "register_url_password",
]

LogLevel = Literal["debug", "info", "warning", "error", "critical"]


def register_secret(value: str | SecretStr | SecretBytes | None) -> None:
    """Never let ``value`` reach a log line (nor any of its escaped forms)."""
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    elif isinstance(value, SecretBytes):
        value = value.get_secret_value().decode("utf-8", "replace")
    if value:
        register_secret_text(value)


def register_settings_secrets(settings: BaseModel) -> int:
    """Register every ``SecretStr``/``SecretBytes`` value in ``settings``; returns how many."""
    found = list(_secret_values(settings))
    for value in found:
        register_secret(value)
    return len(found)


def _secret_values(value: object) -> Iterable[SecretStr | SecretBytes]:
    if isinstance(value, SecretStr | SecretBytes):
        yield value
    elif isinstance(value, BaseModel):
        for name in type(value).model_fields:
            yield from _secret_values(getattr(value, name))
    elif isinstance(value, dict):
        for item in value.values():
            yield from _secret_values(item)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _secret_values(item)


def redact_event(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: mask registered secrets in every key and value of the event."""
    return {redact(k): redact_value(v) for k, v in event_dict.items()}


class _RedactingFormatter(structlog.stdlib.ProcessorFormatter):
    """The last line of defence: mask secrets in the rendered line itself."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def _shared_processors() -> list[Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.stdlib.PositionalArgumentsFormatter(),
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]


def _renderer(as_json: bool, *, colors: bool = False) -> Processor:
    if as_json:
        return structlog.processors.JSONRenderer(sort_keys=False)
    # Plain tracebacks: rich ones print local variables, which may hold secrets and
    # are truncated before the line-level redaction could recognise them.
    # Colours only on a terminal (and never with NO_COLOR): escapes in a file are noise.
    return structlog.dev.ConsoleRenderer(
        colors=colors, exception_formatter=structlog.dev.plain_traceback
    )


def configure_logging(
    json: bool | None = None,
    level: LogLevel | str = "info",
    *,
    stream: TextIO | None = None,
) -> None:
    """Send all logs to ``stream`` (stderr): JSON lines unless on a terminal (or forced)."""
    threshold = _level(level)
    out = stream if stream is not None else sys.stderr
    as_json = (not _isatty(out)) if json is None else json
    shared = _shared_processors()
    formatter = _RedactingFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            redact_event,
            _renderer(as_json, colors=_isatty(out) and not os.environ.get("NO_COLOR")),
        ],
    )
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(threshold)
    # Alembic narrates every migration step at info; an operator wants only its problems.
    logging.getLogger("alembic").setLevel(max(threshold, logging.WARNING))
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )


def _level(level: str) -> int:
    value = logging.getLevelNamesMapping().get(level.upper())
    if value is None:
        raise ValueError(f"unknown log level {level!r}: use debug, info, warning or error")
    return value


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def configure_from_settings(settings: Settings, *, stream: TextIO | None = None) -> None:
    """Configure logs from ``settings.log`` and register every secret the settings hold."""
    register_settings_secrets(settings)
    register_url_password(settings.state_url)
    as_json = {"auto": None, "json": True, "console": False}[settings.log.format]
    configure_logging(as_json, settings.log.level, stream=stream)


def register_url_password(url: str) -> None:
    """Register the password of a database URL (the state URL is not a SecretStr)."""
    if "@" not in url:  # no user info, so no password (and no SQLAlchemy import for a CLI)
        return
    from sqlalchemy.engine import make_url  # noqa: PLC0415
    from sqlalchemy.exc import ArgumentError  # noqa: PLC0415

    try:
        password = make_url(url).password
    except ArgumentError:
        return
    register_secret(str(password) if password is not None else None)
