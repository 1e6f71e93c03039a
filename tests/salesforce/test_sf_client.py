"""Faults at the HTTP boundary: retries, re-authentication, classification, API budget."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import requests
import responses
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from agent.config.settings import ConfigError
from connectors.common.budget import BudgetExhaustedError
from connectors.common.errors import FatalError, RateLimitedError
from connectors.common.retry import RetryPolicy
from connectors.salesforce import SalesforceConnector, from_settings
from connectors.salesforce.errors import SalesforceFatalError
from tests.salesforce.fake import FakeSalesforce

LIMIT = [{"message": "TotalRequests Limit exceeded.", "errorCode": "REQUEST_LIMIT_EXCEEDED"}]
EXPIRED = [{"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}]
UNAVAILABLE = [{"message": "Server temporarily unavailable", "errorCode": "SERVER_UNAVAILABLE"}]


def _accounts(connector: SalesforceConnector) -> list[str]:
    return [a.id for batch in connector.read_accounts(None) for a in batch.records]


def _seed(fake: FakeSalesforce, n: int = 3) -> list[str]:
    return [fake.org.insert("Account", {"Name": f"A{i}"}) for i in range(n)]


def test_503_then_success_is_retried(fake: FakeSalesforce, connector: SalesforceConnector) -> None:
    ids = _seed(fake)
    fake.fail("composite", 503, UNAVAILABLE)
    with capture_logs() as logs:
        assert _accounts(connector) == ids
    assert fake.calls["composite"] == 2
    assert [e["status"] for e in logs if e["event"] == "vendor_call_retry"] == [503]


def test_request_limit_exceeded_is_retried_after_the_vendors_retry_after(
    fake: FakeSalesforce, mock: responses.RequestsMock
) -> None:
    ids = _seed(fake)
    fake.fail("composite", 403, LIMIT, headers={"Retry-After": "7"})
    waits: list[float] = []
    policy = RetryPolicy(attempts=3, initial=0.01, maximum=0.01, sleep=waits.append)
    connector = from_settings(_session_settings(), policy=policy)
    assert _accounts(connector) == ids
    assert waits == [7.0]


def test_request_limit_exceeded_gives_up_after_the_attempts(
    fake: FakeSalesforce, connector: SalesforceConnector
) -> None:
    _seed(fake)
    fake.fail("composite", 403, LIMIT, times=10)
    with pytest.raises(RateLimitedError, match="REQUEST_LIMIT_EXCEEDED"):
        _accounts(connector)
    assert fake.calls["composite"] == 4  # the policy's attempts, no more


def test_other_4xx_is_not_retried(fake: FakeSalesforce, connector: SalesforceConnector) -> None:
    fake.fail(
        "composite", 400, [{"message": "unexpected token: FROM", "errorCode": "MALFORMED_QUERY"}]
    )
    with pytest.raises(SalesforceFatalError, match="MALFORMED_QUERY") as err:
        _accounts(connector)
    assert err.value.code == "MALFORMED_QUERY"
    assert fake.calls["composite"] == 1


def test_dropped_connection_is_retried(
    fake: FakeSalesforce, connector: SalesforceConnector
) -> None:
    ids = _seed(fake)
    fake.fail("composite", 0, requests.ConnectionError("connection reset by peer"))
    assert _accounts(connector) == ids
    assert fake.calls["composite"] == 2


def _session_settings():
    from connectors.salesforce.settings import SalesforceSettings

    return SalesforceSettings(
        session_id="fake-session", instance_url="https://acme.my.salesforce.com"
    )


def _password_settings(fake: FakeSalesforce):
    from connectors.salesforce.settings import SalesforceSettings

    fake.credentials["int@acme.example"] = "s3cret-pw" + "TOKEN123"
    return SalesforceSettings(
        username="int@acme.example", password="s3cret-pw", security_token="TOKEN123"
    )


def test_expired_session_logs_in_again_once_and_repeats_the_call(
    fake: FakeSalesforce, mock: responses.RequestsMock
) -> None:
    ids = _seed(fake)
    connector = from_settings(_password_settings(fake))
    assert _accounts(connector) == ids
    assert fake.calls["login"] == 1
    fake.expire_sessions()
    with capture_logs() as logs:
        assert _accounts(connector) == ids
    assert fake.calls["login"] == 2
    assert [e["event"] for e in logs].count("salesforce_session_renewed") == 1
    login = next(c for c in mock.calls if "/services/Soap/u/" in c.request.url)
    assert "login.salesforce.com" in login.request.url  # the default login domain


def test_a_session_rejected_again_after_login_is_fatal_without_a_loop(
    fake: FakeSalesforce, mock: responses.RequestsMock
) -> None:
    _seed(fake)
    connector = from_settings(_password_settings(fake))
    fake.fail("composite", 401, EXPIRED, times=10)
    with pytest.raises(SalesforceFatalError, match="session expired"):
        _accounts(connector)
    assert fake.calls["login"] == 2  # first login and exactly one renewal
    assert fake.calls["composite"] == 2


def test_expired_configured_session_id_is_fatal_and_names_the_setting(
    fake: FakeSalesforce, connector: SalesforceConnector
) -> None:
    fake.expire_sessions()
    with pytest.raises(SalesforceFatalError, match=r"salesforce\.session_id"):
        _accounts(connector)
    assert fake.calls["login"] == 0


def test_wrong_password_fails_with_salesforce_reason_and_no_secret(
    fake: FakeSalesforce, mock: responses.RequestsMock
) -> None:
    settings = _password_settings(fake)
    fake.credentials["int@acme.example"] = "other"
    connector = from_settings(settings)
    with pytest.raises(FatalError) as err:
        _accounts(connector)
    assert "INVALID_LOGIN" in str(err.value)
    assert "s3cret-pw" not in str(err.value)
    assert "TOKEN123" not in str(err.value)


def test_missing_credentials_are_a_config_error_naming_keys() -> None:
    from agent.config.settings import SalesforceSettings

    with pytest.raises(ConfigError, match="AX_SALESFORCE__USERNAME"):
        from_settings(SalesforceSettings())
    with pytest.raises(ConfigError, match=r"salesforce\.security_token"):
        from_settings(SalesforceSettings(username="u", password="p"))


def test_budget_stops_before_passing_the_orgs_share(
    fake: FakeSalesforce, build: Callable[..., SalesforceConnector]
) -> None:
    fake.daily_limit, fake.api_used = 1000, 797
    _seed(fake, 4500)  # describe, then three query pages
    before = (
        REGISTRY.get_sample_value(
            "ax_api_budget_stops_total", {"vendor": "salesforce", "reason": "org_share"}
        )
        or 0.0
    )
    connector = build(use_composite=False)  # one call a page
    with capture_logs() as logs, pytest.raises(BudgetExhaustedError, match="800 of 1000"):
        _accounts(connector)
    assert fake.calls["query"] == 2  # the third page was never asked for
    stop = next(e for e in logs if e["event"] == "api_budget_stop")
    assert stop["reason"] == "org_share"
    after = REGISTRY.get_sample_value(
        "ax_api_budget_stops_total", {"vendor": "salesforce", "reason": "org_share"}
    )
    assert after == before + 1


def test_budget_stops_a_run_at_its_share_of_the_remaining_allowance(
    fake: FakeSalesforce, build: Callable[..., SalesforceConnector]
) -> None:
    fake.daily_limit, fake.api_used = 200, 0
    _seed(fake, 6500)  # four query pages
    connector = build(
        budget_run_share=0.015, use_composite=False
    )  # 1.5 % of 200 remaining: three calls
    with pytest.raises(BudgetExhaustedError, match="3 API calls"):
        _accounts(connector)
    assert fake.calls["query"] == 2
    connector.reset_budget()  # a new run: a new allowance from the next report
    fake.api_used = 0
    with pytest.raises(BudgetExhaustedError):
        _accounts(connector)
    assert fake.calls["query"] == 5  # describe is cached: three more pages this run


def test_a_read_stopped_early_hands_over_no_cursor(
    fake: FakeSalesforce, build: Callable[..., SalesforceConnector]
) -> None:
    fake.daily_limit, fake.api_used = 1000, 797
    _seed(fake, 4500)
    seen = []
    batches = build(use_composite=False).read_accounts(None)
    seen.append(next(batches))
    with pytest.raises(BudgetExhaustedError):
        seen.append(next(batches))
    assert [len(b.records) for b in seen] == [2000]  # the first page arrived
    assert all(b.cursor is None for b in seen)  # the stored cursor stays where it was
