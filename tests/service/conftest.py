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

from collections.abc import Iterator  # noqa: E402  # after the path set-up above

import pytest  # noqa: E402
from fake_slack import FakeSlack  # noqa: E402
from pytest_httpserver import HTTPServer  # noqa: E402

from tests.salesforce.fake import FakeSalesforce  # noqa: E402
from tests.service.portfolio import Portfolio  # noqa: E402
from tests.service.stack import VendorStack  # noqa: E402


@pytest.fixture
def slack(httpserver: HTTPServer) -> FakeSlack:
    """The Slack fake of the alerting tests on a loopback port."""
    return FakeSlack(httpserver).install()


@pytest.fixture
def stack(slack: FakeSlack) -> Iterator[VendorStack]:
    """Salesforce and Slack fakes on loopback, holding the test portfolio."""
    built = VendorStack(Portfolio(), FakeSalesforce(), slack)
    yield built
    built.close()
