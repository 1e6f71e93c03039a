"""Vendor failures sorted by what the caller should do about them.

Each adapter turns its SDK's exceptions into one of these at the boundary; the retry
policy (``connectors.common.retry``) keys on the class alone.
"""

from __future__ import annotations

from agent.core.errors import KnownError

__all__ = ["FatalError", "RateLimitedError", "RetriableError", "VendorError"]


class VendorError(KnownError):
    """Base of every classified vendor failure. Messages never carry secrets."""

    def __init__(self, vendor: str, message: str, *, status: int | None = None) -> None:
        super().__init__(f"{vendor}: {message}")
        self.vendor = vendor
        self.status = status


class RetriableError(VendorError):
    """Worth another try: 5xx, timeouts, dropped connections, lock contention.

    ``retry_after`` is the vendor's own hint in seconds, when it gave one.
    """

    def __init__(
        self,
        vendor: str,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(vendor, message, status=status)
        self.retry_after = retry_after


class RateLimitedError(RetriableError):
    """The vendor said slow down (429 or its own limit code)."""


class FatalError(VendorError):
    """Retrying will not help: bad credentials, a malformed request, a missing field."""
