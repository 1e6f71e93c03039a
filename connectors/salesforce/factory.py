"""Building the Salesforce connector (and survey source) from Salesforce's own settings."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import requests

from agent.core.contract import FieldSpec, default_field_specs
from connectors.common.budget import CallBudget
from connectors.common.calls import CallCounter
from connectors.common.network import CONNECT_TIMEOUT_S
from connectors.common.retry import RetryPolicy
from connectors.salesforce.auth import Login
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.connector import SalesforceConnector
from connectors.salesforce.errors import VENDOR
from connectors.salesforce.settings import SalesforceSettings
from connectors.salesforce.surveys import SalesforceSurveySource

__all__ = ["client_from_settings", "from_settings", "survey_source_from_settings"]


def client_from_settings(
    settings: SalesforceSettings,
    *,
    http: requests.Session | None = None,
    policy: RetryPolicy | None = None,
) -> SalesforceClient:
    """An authenticated-on-first-use client; raises ``ConfigError`` for missing credentials."""
    http = http or _TimedSession(settings.timeout_seconds)
    return SalesforceClient(
        Login(settings, http),
        api_version=settings.api_version,
        http=http,
        policy=policy
        or RetryPolicy(
            call_budget_s=settings.retry_call_budget_s, job_budget_s=settings.retry_job_budget_s
        ),
        counter=CallCounter(VENDOR),
        budget=CallBudget(
            VENDOR,
            run_share=settings.budget_run_share,
            max_used_share=settings.budget_max_used_share,
        ),
        timeout=settings.timeout_seconds,
    )


def from_settings(
    settings: SalesforceSettings,
    fields: Sequence[FieldSpec] | None = None,
    *,
    http: requests.Session | None = None,
    policy: RetryPolicy | None = None,
    dry_run: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> SalesforceConnector:
    """The Salesforce ``CrmConnector`` writing ``fields`` (DOMAIN.md's table when None)."""
    client = client_from_settings(settings, http=http, policy=policy)
    specs = tuple(fields) if fields is not None else default_field_specs()
    return SalesforceConnector(client, settings, specs, dry_run=dry_run, sleep=sleep)


def survey_source_from_settings(
    settings: SalesforceSettings,
    *,
    http: requests.Session | None = None,
    policy: RetryPolicy | None = None,
) -> SalesforceSurveySource | None:
    """The Salesforce ``SurveySource`` of ``settings.survey``; None when off."""
    survey = settings.survey
    if survey.source == "none":
        return None
    client = client_from_settings(settings, http=http, policy=policy)
    overlap = timedelta(seconds=settings.cursor_overlap_seconds)
    return SalesforceSurveySource(client, survey, overlap=overlap)


class _TimedSession(requests.Session):
    """A session whose requests time out unless told otherwise: the SDK's login and
    Metadata calls pass no timeout, and a host that never answers must not hang a run."""

    def __init__(self, read_timeout: float) -> None:
        super().__init__()
        self._timeouts = (min(CONNECT_TIMEOUT_S, read_timeout), read_timeout)

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self._timeouts
        return super().request(method, url, *args, **kwargs)
