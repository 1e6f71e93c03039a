"""Rate limits and faults: one retry layer, 429 waits, 5xx and timeouts retried, 4xx not."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from structlog.testing import capture_logs

from agent.core.ports import FieldUpdate
from connectors.common.errors import FatalError, RetriableError
from connectors.common.network import UnreachableError
from connectors.hubspot import HubSpotConnector
from tests.hubspot import wire
from tests.hubspot.fakeportal import FakePortal
from tests.hubspot.harness import FakeTime, build_connector, provision_all

MakeConnector = Callable[..., HubSpotConnector]
LIST = "/crm/v3/objects/companies"
SEARCH = "/crm/v3/objects/companies/search"
TEN_SECONDLY = {
    "status": "error",
    "message": "You have reached your ten_secondly_rolling limit.",
    "errorType": "RATE_LIMIT",
    "correlationId": "c8a6e3b2-0000-4000-8000-000000000001",
    "policyName": "TEN_SECONDLY_ROLLING",
}


def test_429_waits_retry_after_then_retries(
    portal: FakePortal, make_connector: MakeConnector, fake_time: FakeTime
) -> None:
    portal.add_company(name="A")
    portal.fail("GET", LIST, 429, headers={"Retry-After": "7"}, body=TEN_SECONDLY)
    connector = make_connector()

    [batch] = list(connector.read_accounts(None))

    assert len(batch.records) == 1
    assert len(portal.calls("GET", LIST)) == 2
    assert any(s >= 7 for s in fake_time.sleeps)
    assert connector.calls.by_kind["companies.list"] == 2


def test_429_without_retry_after_waits_the_rate_limit_interval(
    portal: FakePortal, make_connector: MakeConnector, fake_time: FakeTime
) -> None:
    headers = {
        "X-HubSpot-RateLimit-Max": "100",
        "X-HubSpot-RateLimit-Remaining": "0",
        "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
    }
    portal.fail("GET", LIST, 429, headers=headers, body=TEN_SECONDLY)
    list(make_connector().read_accounts(None))
    assert any(s >= 10 for s in fake_time.sleeps)


def test_an_exhausted_daily_limit_is_not_retried(
    portal: FakePortal, make_connector: MakeConnector
) -> None:
    daily = {**TEN_SECONDLY, "policyName": "DAILY", "message": "You have reached your daily limit."}
    portal.fail("GET", LIST, 429, body=daily, times=5)
    with pytest.raises(FatalError, match="daily API limit"):
        list(make_connector().read_accounts(None))
    assert len(portal.calls("GET", LIST)) == 1


def test_server_errors_are_retried_with_backoff(
    portal: FakePortal, make_connector: MakeConnector, fake_time: FakeTime
) -> None:
    portal.fail("GET", LIST, 503, times=2)
    list(make_connector().read_accounts(None))
    assert len(portal.calls("GET", LIST)) == 3
    assert len(fake_time.sleeps) == 2


def test_posts_are_retried_by_exactly_one_layer(
    portal: FakePortal, make_connector: MakeConnector
) -> None:
    provision_all(portal)
    portal.fail("POST", "/crm/v3/objects/companies/batch/update", 502, times=10)
    with pytest.raises(RetriableError):
        make_connector().write("account", [FieldUpdate("1", {"ax_nps": 1.0})])
    # The test policy allows 4 attempts; urllib3's own retry is off, so 4 requests, not more.
    assert len(portal.calls("POST", "/crm/v3/objects/companies/batch/update")) == 4


def test_the_clients_urllib3_retry_is_switched_off(make_connector: MakeConnector) -> None:
    connector = make_connector()
    apis = connector._session.apis
    for api in (
        apis.objects_basic,
        apis.objects_batch,
        apis.objects_search,
        apis.associations_batch,
    ):
        assert api.api_client.configuration.retries.total is False


def test_other_client_errors_are_not_retried(
    portal: FakePortal, make_connector: MakeConnector
) -> None:
    connector = make_connector()
    cursor = list(connector.read_accounts(None))[-1].cursor
    bad = wire.error("VALIDATION_ERROR", "There was a problem with the request.")
    portal.fail("POST", SEARCH, 400, body=bad, times=5)
    with pytest.raises(FatalError, match="VALIDATION_ERROR: There was a problem"):
        list(connector.read_accounts(cursor))
    assert len(portal.calls("POST", SEARCH)) == 1


def test_a_rejected_token_is_fatal_and_never_shown(
    portal: FakePortal, base_url: str, fake_time: FakeTime
) -> None:
    portal.token = "the-real-token"
    connector = build_connector(portal, base_url, fake_time)  # built with the portal's token
    portal.token = "rotated"
    with capture_logs() as logs, pytest.raises(FatalError) as caught:
        list(connector.read_accounts(None))
    assert caught.value.status == 401
    assert "hubspot.access_token" in str(caught.value)
    assert "the-real-token" not in str(caught.value)
    assert "the-real-token" not in repr(logs)
    assert len(portal.requests) == 1


class _RealPause(FakeTime):
    """Also really sleeps, so the (single-threaded) test server finishes the slow answer."""

    def sleep(self, seconds: float) -> None:
        super().sleep(seconds)
        time.sleep(0.6)


def test_a_timeout_is_retried(portal: FakePortal, base_url: str) -> None:
    portal.add_company(name="A")
    portal.fail("GET", LIST, 200, body={"results": []}, delay=0.5)
    connector = build_connector(portal, base_url, _RealPause(), timeout_s=0.2)
    [batch] = list(connector.read_accounts(None))
    assert len(batch.records) == 1
    assert len(portal.calls("GET", LIST)) == 2


def test_a_refused_connection_fails_at_once_naming_host_and_port(
    portal: FakePortal, fake_time: FakeTime
) -> None:
    connector = build_connector(portal, "http://127.0.0.1:9", fake_time)
    with pytest.raises(UnreachableError) as err:
        list(connector.read_accounts(None))
    assert str(err.value) == (
        "hubspot: cannot reach 127.0.0.1:9: connection refused (companies.list)"
    )
    assert fake_time.sleeps == []  # retrying would not make the port listen


def test_an_unresolvable_host_fails_at_once_saying_so(
    portal: FakePortal, fake_time: FakeTime
) -> None:
    connector = build_connector(portal, "https://no-such-portal.invalid", fake_time)
    with pytest.raises(UnreachableError, match=r"no-such-portal\.invalid:443: name not resolved"):
        list(connector.read_accounts(None))
    assert fake_time.sleeps == []


def test_the_burst_limit_spaces_calls(
    portal: FakePortal, make_connector: MakeConnector, fake_time: FakeTime
) -> None:
    for i in range(1_200):
        portal.add("companies", {"name": str(i)})
    list(make_connector(burst_limit=5, burst_window_s=10).read_accounts(None))
    # 12 list calls, 5 per 10 s: the 6th waits until 10 s, the 11th until 20 s.
    assert 20 <= fake_time.now < 30


def test_searches_keep_under_the_search_limit(
    portal: FakePortal, make_connector: MakeConnector, fake_time: FakeTime
) -> None:
    connector = make_connector(search_page_size=1)
    cursor = list(connector.read_accounts(None))[-1].cursor
    for i in range(12):
        portal.add_company(name=str(i))
    start = fake_time.now
    list(connector.read_accounts(cursor))
    assert len(portal.calls("POST", SEARCH)) == 12
    assert fake_time.now - start >= 2  # 5 per second: the 6th and 11th search wait


def test_an_exhausted_allowance_on_a_success_pauses_the_next_call(
    portal: FakePortal, make_connector: MakeConnector, fake_time: FakeTime
) -> None:
    portal.add_company(name="A")
    headers = {
        "X-HubSpot-RateLimit-Remaining": "0",
        "X-HubSpot-RateLimit-Interval-Milliseconds": "10000",
    }
    page = {"results": [], "paging": {"next": {"after": "1", "link": "?after=1"}}}
    portal.fail("GET", LIST, 200, headers=headers, body=page)
    list(make_connector().read_accounts(None))
    assert fake_time.sleeps == [pytest.approx(10.0)]
