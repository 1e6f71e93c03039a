"""Salesforce: accounts and contacts in, the agent's figures written back to fields.

Build the connector with ``from_settings(settings)``; it implements
``agent.core.ports.CrmConnector``. Provisioning of the agent's custom fields is in
``connectors.salesforce.provision``, an in-memory org for tests and benchmarks in
``tests.salesforce.fake``.
"""

from __future__ import annotations

from connectors.salesforce.connector import DRY_RUN, SalesforceConnector
from connectors.salesforce.factory import (
    client_from_settings,
    from_settings,
    survey_source_from_settings,
)
from connectors.salesforce.surveys import SalesforceSurveySource

__all__ = [
    "DRY_RUN",
    "SalesforceConnector",
    "SalesforceSurveySource",
    "client_from_settings",
    "from_settings",
    "survey_source_from_settings",
]
