"""Links from the report to the CRM's own account pages."""

from __future__ import annotations

from urllib.parse import quote

import structlog

from agent.config.settings import Settings

__all__ = [
    "HUBSPOT_RECORD_URL",
    "SALESFORCE_RECORD_URL",
    "record_link",
    "record_url_template",
]

_log = structlog.get_logger(__name__)

SALESFORCE_RECORD_URL = "{instance}/lightning/r/Account/{id}/view"
HUBSPOT_RECORD_URL = "https://app.hubspot.com/contacts/{portal}/company/{id}"


def record_url_template(settings: Settings, *, crm: str | None = None) -> str | None:
    """The account-page template (with ``{id}``) for ``crm`` (default: the configured one).

    ``slack.crm_url_template`` (the product's one link template, shared with alerts)
    wins when set; otherwise Salesforce needs ``salesforce.instance_url`` and HubSpot
    ``report.hubspot_portal_id``. The plain-file CRM has no pages: no links.
    """
    configured = settings.slack.crm_url_template
    if configured:
        if configured.startswith(("https://", "http://")) and "{id}" in configured:
            return configured
        _log.warning("report.link_template_ignored", reason="not an http(s) URL with {id}")
        return None
    crm = crm or settings.crm
    if crm == "salesforce" and settings.salesforce.instance_url:
        instance = settings.salesforce.instance_url.rstrip("/")
        return SALESFORCE_RECORD_URL.replace("{instance}", instance)
    if crm == "hubspot" and settings.report.hubspot_portal_id:
        portal = quote(settings.report.hubspot_portal_id, safe="")
        return HUBSPOT_RECORD_URL.replace("{portal}", portal)
    return None


def record_link(template: str | None, account_id: str) -> str | None:
    """The URL of one account's CRM page; the id is percent-encoded into the path."""
    if template is None:
        return None
    return template.replace("{id}", quote(account_id, safe=""))
