"""Fixtures of the long-running agent's tests.

The Slack fake and builders of the alerting tests are reused as they import each
other: by bare module name, from their folder on ``sys.path``.
"""

from __future__ import annotations

import sys
from pathlib import Path

_ALERTING = str(Path(__file__).resolve().parent.parent / "alerting")
if _ALERTING not in sys.path:
    sys.path.append(_ALERTING)
