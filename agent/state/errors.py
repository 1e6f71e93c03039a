"""The state store's errors: each says what is wrong and what to do about it."""

from __future__ import annotations

from agent.core.errors import KnownError

__all__ = ["FencedError", "LeadershipError", "MirrorBusyError", "StateError"]


class StateError(Exception):
    """The state database cannot be used as configured (unreachable, unsupported, too new)."""


class LeadershipError(StateError):
    """Another agent is the leader and this one cannot stand by (or was told not to)."""


class FencedError(StateError):
    """This agent's leadership epoch was superseded (or its lease ran out): the side
    effect it was about to make is not made, and the agent must stop and step down."""


class MirrorBusyError(StateError, KnownError):
    """The CRM mirror is halfway through a full read (its records mixed) and the read did
    not end within the time a reader waits for it."""
