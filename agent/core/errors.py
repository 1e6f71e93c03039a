"""Errors every layer may raise and the command line explains in one line."""

from __future__ import annotations

__all__ = ["ConfigError"]


class ConfigError(Exception):
    """Invalid configuration, explained by key path for a CRM admin."""
