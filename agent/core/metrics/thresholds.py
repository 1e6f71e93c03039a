"""Comparing figures with thresholds, and ratios that may have no denominator.

A figure within ``TOLERANCE`` of a threshold counts as reaching it, so float noise
(49.99999999999999 for an NPS of 50) never flips a flag. This is the one place
that tolerance lives.
"""

from __future__ import annotations

__all__ = ["TOLERANCE", "at_most", "ratio", "reaches"]

TOLERANCE = 1e-9


def reaches(value: float, threshold: float) -> bool:
    """``value >= threshold``, counting a value within TOLERANCE below it as reaching it."""
    return value >= threshold - TOLERANCE


def at_most(value: float, limit: float) -> bool:
    """``value <= limit``, counting a value within TOLERANCE above it as within it."""
    return value <= limit + TOLERANCE


def ratio(numerator: float, denominator: float) -> float | None:
    """``numerator / denominator``; ``None`` when the denominator is 0."""
    if denominator == 0:
        return None
    return numerator / denominator
