"""Links from the report to the CRM's own account pages."""

from __future__ import annotations

from urllib.parse import quote

from agent.settings import Settings

__all__ = [
    "HUBSPOT_RECORD_URL",
    "SALESFORCE_RECORD_URL",
    "record_link",
    "record_url_template",
]

SALESFORCE_RECORD_URL = "{instance}/lightning/r/Account/{id}/view"
HUBSPOT_RECORD_URL = "https://app.hubspot.com/contacts/{portal}/company/{id}"


def record_url_template(settings: Settings, *, crm: str | None = None) -> str | None:
    """The account-page template (with ``{id}``) for ``crm`` (default: the configured one).

    ``report.record_url`` wins when set; otherwise Salesforce needs
    ``salesforce.instance_url`` and HubSpot ``report.hubspot_portal_id``. The
    plain-file CRM has no pages, so its reports carry no links.
    """
    if settings.report.record_url:
        return settings.report.record_url
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
