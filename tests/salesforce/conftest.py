"""A fake Salesforce org behind ``responses``, and a connector pointed at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import responses

from agent.config.settings import SalesforceSettings
from agent.core.contract import default_field_specs
from connectors.common.retry import RetryPolicy
from connectors.salesforce import SalesforceConnector, from_settings
from tests.salesforce.fake import FakeSalesforce, add_agent_fields

INSTANCE = "https://acme.my.salesforce.com"


def no_sleep(_seconds: float) -> None:
    """Retries and polls in tests wait for nothing."""


@pytest.fixture
def fake() -> FakeSalesforce:
    org = FakeSalesforce(instance_url=INSTANCE, daily_limit=100_000)
    add_agent_fields(org, default_field_specs())
    return org


@pytest.fixture
def mock(fake: FakeSalesforce) -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        for method in ("GET", "POST", "PATCH"):
            rsps.add_callback(method, fake.url_pattern, callback=fake)
        yield rsps


def make_settings(**salesforce: object) -> SalesforceSettings:
    values: dict[str, object] = {"session_id": "fake-session", "instance_url": INSTANCE}
    values.update(salesforce)
    return SalesforceSettings.model_validate(values)


def make_connector(
    settings: SalesforceSettings | None = None, **kwargs: object
) -> SalesforceConnector:
    policy = RetryPolicy(attempts=4, initial=0.01, maximum=0.01, sleep=no_sleep)
    return from_settings(settings or make_settings(), policy=policy, sleep=no_sleep, **kwargs)


@pytest.fixture
def connector(mock: responses.RequestsMock) -> SalesforceConnector:
    return make_connector()


@pytest.fixture
def build(mock: responses.RequestsMock) -> Callable[..., SalesforceConnector]:
    """A factory: ``build(revenue_field="ARR__c", dry_run=True)`` -> connector on the fake."""

    def _build(*, dry_run: bool = False, **salesforce: object) -> SalesforceConnector:
        return make_connector(make_settings(**salesforce), dry_run=dry_run)

    return _build
