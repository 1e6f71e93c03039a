"""Adapters from vendors to the protocols in ``agent.core.ports``.

Vendor SDKs are imported here and nowhere else (ruff's banned-api enforces it).
``connectors.common`` holds the one copy of the plumbing every vendor shares:
error classes, the retry policy, paging, rate limiting and call counting.
"""
