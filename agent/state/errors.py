"""The state store's errors: each says what is wrong and what to do about it."""

from __future__ import annotations

__all__ = ["LeadershipError", "StateError"]


class StateError(Exception):
    """The state database cannot be used as configured (unreachable, unsupported, too new)."""


class LeadershipError(StateError):
    """Another agent is the leader and this one cannot stand by (or was told not to)."""
