"""The rule file format as frozen pydantic models: typed data, defaults in one place.

A rule file is a mapping with one key, ``rules``, holding a list of ``Rule``. The
models check shapes and types; ``agent.rules.loader`` adds what needs the whole
set (unique ids, known channels and routes, inhibited rules exist) and compiles
the expressions and templates.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from agent.core.durations import parse_duration
from agent.core.messages import Attachment
from agent.rules.fields import Scope

__all__ = [
    "Attachment",
    "Duration",
    "Escalate",
    "Notify",
    "Rule",
    "RuleFile",
    "Severity",
]

Severity = Literal["info", "warning", "critical"]
_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"


def _duration(value: object) -> object:
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str):
        raise ValueError("a duration is text such as 48h, 7d or 30m")  # pydantic reports ValueError
    return parse_duration(value)


Duration = Annotated[timedelta, BeforeValidator(_duration)]


def _expression(value: object) -> object:
    """YAML reads a bare ``true`` as a boolean; as a condition it means the same."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


Expression = Annotated[str, BeforeValidator(_expression), Field(min_length=1)]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=False)


class Notify(_Frozen):
    """Where an alert goes: a channel, a route, and/or the account owner.

    With ``owner: true`` the alert goes to the account owner's direct messages
    (found by email), and to ``channel``/``route`` (or the default channel) when
    the owner cannot be found. Neither ``channel`` nor ``route``: the default channel.
    """

    channel: str | None = None
    route: str | None = None
    owner: bool = False
    mention_owner: bool = False

    @model_validator(mode="after")
    def _one_target(self) -> Notify:
        if self.channel is not None and self.route is not None:
            raise ValueError("give either channel or route, not both")
        return self


class Escalate(_Frozen):
    """Escalate once when the loop is still open ``after`` the alert's start."""

    after: Duration = timedelta(hours=48)
    unless: Expression | None = None
    to: str = Field(min_length=1)


class Rule(_Frozen):
    id: str = Field(pattern=_ID_PATTERN)
    description: str = ""
    scope: Scope
    when: Expression
    severity: Severity = "warning"
    notify: Notify = Notify()
    message: str | None = None
    realert: Duration | None = None
    max_age: Duration = timedelta(days=14)
    escalate: Escalate | None = None
    inhibits: tuple[str, ...] = ()
    attach: Attachment | None = None
    enabled: bool = True


class RuleFile(_Frozen):
    rules: tuple[Rule, ...] = ()
