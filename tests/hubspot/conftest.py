"""Fixtures: a fake HubSpot portal served on an ephemeral loopback port."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from connectors.hubspot import HubSpotConnector
from tests.hubspot.fakeportal import FakePortal
from tests.hubspot.harness import FakeTime, build_connector


@pytest.fixture
def portal(httpserver: HTTPServer) -> Iterator[FakePortal]:
    """A fresh portal behind the test's HTTP server; fails the test on a contract violation."""
    fake = FakePortal()

    def handler(request: Request) -> Response:
        query = {k: request.args.getlist(k) for k in request.args}
        headers = {k.lower(): v for k, v in request.headers.items()}
        status, extra, payload = fake.handle(
            request.method, request.path, query, headers, request.get_data()
        )
        return Response(
            json.dumps(payload), status=status, headers=extra, content_type="application/json"
        )

    httpserver.expect_request(re.compile(r"/.*")).respond_with_handler(handler)
    yield fake
    assert fake.violations == [], "requests broke HubSpot's documented contract"


@pytest.fixture
def base_url(httpserver: HTTPServer) -> str:
    return httpserver.url_for("").rstrip("/")


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def make_connector(
    portal: FakePortal, base_url: str, fake_time: FakeTime
) -> Callable[..., HubSpotConnector]:
    """``make_connector(**hubspot_settings)``: a connector for the portal on a fake clock."""

    def make(**overrides: Any) -> HubSpotConnector:
        return build_connector(portal, base_url, fake_time, **overrides)

    return make
