"""Building the Salesforce connector (and survey source) from the agent's settings."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

import requests

from agent.config.settings import Settings
from connectors.common.budget import CallBudget
from connectors.common.calls import CallCounter
from connectors.common.retry import RetryPolicy
from connectors.salesforce.auth import Login
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.connector import SalesforceConnector
from connectors.salesforce.errors import VENDOR
from connectors.salesforce.surveys import SalesforceSurveySource

__all__ = ["client_from_settings", "from_settings", "survey_source_from_settings"]


def client_from_settings(
    settings: Settings,
    *,
    http: requests.Session | None = None,
    policy: RetryPolicy | None = None,
) -> SalesforceClient:
    """An authenticated-on-first-use client; raises ``ConfigError`` for missing credentials."""
    sf = settings.salesforce
    http = http or requests.Session()
    return SalesforceClient(
        Login(sf, http),
        api_version=sf.api_version,
        http=http,
        policy=policy,
        counter=CallCounter(VENDOR),
        budget=CallBudget(
            VENDOR, run_share=sf.budget_run_share, max_used_share=sf.budget_max_used_share
        ),
        timeout=sf.timeout_seconds,
    )


def from_settings(
    settings: Settings,
    *,
    http: requests.Session | None = None,
    policy: RetryPolicy | None = None,
    dry_run: bool = False,
    sleep: Callable[[float], None] = time.sleep,
) -> SalesforceConnector:
    """The Salesforce ``CrmConnector`` configured by ``settings.salesforce`` and ``fields``."""
    client = client_from_settings(settings, http=http, policy=policy)
    return SalesforceConnector(
        client, settings.salesforce, settings.fields.specs(), dry_run=dry_run, sleep=sleep
    )


def survey_source_from_settings(
    settings: Settings,
    *,
    http: requests.Session | None = None,
    policy: RetryPolicy | None = None,
) -> SalesforceSurveySource | None:
    """The Salesforce ``SurveySource`` of ``settings.salesforce.survey``; None when off."""
    survey = settings.salesforce.survey
    if survey.source == "none":
        return None
    client = client_from_settings(settings, http=http, policy=policy)
    overlap = timedelta(seconds=settings.salesforce.cursor_overlap_seconds)
    return SalesforceSurveySource(client, survey, overlap=overlap)
