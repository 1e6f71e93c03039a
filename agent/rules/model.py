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
    "ACCOUNT_OWNER",
    "Attachment",
    "Duration",
    "Escalate",
    "Notify",
    "Rule",
    "RuleFile",
    "Severity",
    "TaskAction",
    "TaskPriority",
]

Severity = Literal["info", "warning", "critical"]
#: A CRM task's priority; each connector maps it to its CRM's values.
TaskPriority = Literal["low", "normal", "high"]
#: ``task.owner``: the account's owner (by ``owner_email``), else this fallback.
ACCOUNT_OWNER = "account_owner"
_EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+$"
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
    #: ``false``: no Slack message at all (a rule that only creates CRM tasks).
    slack: bool = True

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


class TaskAction(_Frozen):
    """A task on the account owner's list in the CRM, created once per subject.

    ``subject`` and ``body`` are templates like ``message``. ``due`` counts from the
    situation's start (a response's submission, else when the rule fired), or from
    when the task is created with ``due_from: created``; without ``due`` the task is
    due ``metrics.loop_sla_hours`` after that. ``owner`` is
    ``account_owner`` (the account's ``owner_email``) or an e-mail address; an owner
    the CRM does not know (or an inactive user) gets ``fallback_owner``, else
    ``tasks.fallback_owner_email``. ``every``: at most one task per account in this
    period (required on account rules, optional on response rules).
    """

    subject: str = Field(min_length=1, max_length=1000)
    body: str = ""
    due: Duration | None = None
    due_from: Literal["start", "created"] = "start"
    priority: TaskPriority = "normal"
    owner: str = Field(default=ACCOUNT_OWNER, min_length=1)
    fallback_owner: str | None = Field(default=None, pattern=_EMAIL_PATTERN)
    every: Duration | None = None

    @model_validator(mode="after")
    def _owner_shape(self) -> TaskAction:
        if self.owner != ACCOUNT_OWNER and "@" not in self.owner:
            raise ValueError(f"owner is '{ACCOUNT_OWNER}' or an e-mail address, not {self.owner!r}")
        return self


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
    task: TaskAction | None = None
    enabled: bool = True


class RuleFile(_Frozen):
    rules: tuple[Rule, ...] = ()
