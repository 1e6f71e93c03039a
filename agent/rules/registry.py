"""The running rule set: reloaded when files change, the last valid set kept.

Like Alertmanager's configuration reload: a change is validated as a whole and
swapped in atomically; an invalid change leaves the last valid rules running and
is reported once (log and, through ``on_invalid``, an admin alert).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

import structlog

from agent.core.routes import Route
from agent.rules.loader import RuleError, RuleLoadError, RuleSet, fingerprint, load_rules

__all__ = ["Reload", "RuleRegistry"]

_log = structlog.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Reload:
    """What ``refresh`` did: ``loaded`` a new set, or found ``error`` (all its errors)."""

    rules: RuleSet
    loaded: bool = False
    error: RuleLoadError | None = None


class RuleRegistry:
    def __init__(
        self,
        path: Path,
        *,
        channels: Collection[str],
        routes: Mapping[str, Route],
        on_invalid: Callable[[RuleLoadError], None] | None = None,
    ) -> None:
        self.path = path
        self._channels = channels
        self._routes = routes
        self._on_invalid = on_invalid
        self._current = RuleSet(rules=(), fingerprint="")
        self._seen = ""
        # The scheduler's jobs and the answers worker refresh from their own threads:
        # one loads, the others wait for its result (never the set it replaces).
        self._lock = threading.Lock()

    @property
    def current(self) -> RuleSet:
        return self._current

    @property
    def seen(self) -> str:
        """The fingerprint of the rule files as the last ``refresh`` found them."""
        return self._seen

    def unchanged_since(self, seen: str) -> bool:
        """Whether the rule files are as they were when ``seen`` was taken (nothing is
        loaded or reported: the next ``refresh`` still does that)."""
        return fingerprint(self.path) == seen

    def refresh(self) -> Reload:
        """Load the files if they changed since the last look. A thread that calls
        while another loads waits for that load and gets its rules."""
        with self._lock:
            seen = fingerprint(self.path)
            if seen == self._seen:
                return Reload(self._current)
            try:
                rules = load_rules(self.path, channels=self._channels, routes=self._routes)
            except Exception as exc:  # a loader bug must not stop the running rules
                self._seen = seen  # reported once per change
                error = exc if isinstance(exc, RuleLoadError) else _unexpected(self.path, exc)
                return self._invalid(error)
            self._current, self._seen = rules, seen
            _log.info("rules_loaded", path=str(self.path), rules=len(rules.rules))
            return Reload(rules, loaded=True)

    def _invalid(self, exc: RuleLoadError) -> Reload:
        _log.error(
            "rules_invalid_kept_last",
            path=str(self.path),
            errors=[str(e) for e in exc.errors],
            running=len(self._current.rules),
        )
        if self._on_invalid is not None:
            self._on_invalid(exc)
        return Reload(self._current, error=exc)


def _unexpected(path: Path, exc: Exception) -> RuleLoadError:
    """An error the loader did not foresee, reported like any invalid rule file."""
    _log.error("rules_loader_failed", path=str(path), exc_info=exc)  # a bug: keep the trace
    return RuleLoadError([RuleError(path, 1, 1, f"cannot load the rules: {type(exc).__name__}")])
