"""Errors every layer may raise and the command line explains in one line."""

from __future__ import annotations

__all__ = ["ConfigError", "KnownError"]


class KnownError(Exception):
    """A failure the agent expects and explains in its message (a vendor that cannot be
    reached or refuses the credentials, a missing field, bad configuration).

    Logged as its message alone: tracebacks are for bugs.
    """


class ConfigError(KnownError):
    """Invalid configuration, explained by key path for a CRM admin."""
