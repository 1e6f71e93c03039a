"""HubSpot's own settings: the ``hubspot:`` block of the agent's configuration.

Plain pydantic models with no SDK import, so reading the configuration does not load
the HubSpot client.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr

__all__ = ["HubSpotSettings", "HubSpotSurveySettings"]


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HubSpotSurveySettings(_Block):
    """HubSpot's own feedback surveys (the ``feedback_submissions`` object) as a survey source."""

    enabled: bool = False
    #: Only submissions whose ``type_property`` equals this are NPS answers; None reads all.
    survey_type: str | None = "NPS"
    type_property: str = "hs_survey_type"
    score_property: str = "hs_response_value"
    comment_property: str = "hs_content"
    submitted_property: str = "hs_submission_timestamp"
    email_property: str = "hs_contact_email_rollup"
    #: A custom survey question stored on the submission that names the driver.
    driver_property: str | None = None
    modified_property: str = "hs_lastmodifieddate"


class HubSpotSettings(_Block):
    """A HubSpot portal reached with a private app access token."""

    access_token: SecretStr | None = None
    #: ``https://api.hubapi.com``; EU portals, proxies and test servers use their own.
    base_url: str = "https://api.hubapi.com"
    revenue_property: str = "annualrevenue"
    potential_property: str | None = None
    tier_property: str | None = None
    extra_properties: list[str] = Field(default_factory=list)
    #: Company properties whose ``;``-separated values are the account's domains.
    domain_properties: list[str] = Field(
        default_factory=lambda: ["domain", "hs_additional_domains"]
    )
    company_modified_property: str = "hs_lastmodifieddate"
    #: Contacts carry their modification date as ``lastmodifieddate``.
    contact_modified_property: str = "lastmodifieddate"
    #: Requests per ``burst_window_s`` (100 per 10 s; 190 or 250 on higher HubSpot tiers).
    burst_limit: int = Field(default=100, gt=0)
    burst_window_s: float = Field(default=10.0, gt=0)
    #: The CRM search API's own, lower limit (5 requests per second).
    search_limit: int = Field(default=5, gt=0)
    search_window_s: float = Field(default=1.0, gt=0)
    list_page_size: int = Field(default=100, ge=1, le=100)
    search_page_size: int = Field(default=200, ge=1, le=200)
    association_batch_size: int = Field(default=1000, ge=1, le=1000)
    write_batch_size: int = Field(default=100, ge=1, le=100)
    #: Incremental reads start this far before the cursor: search results lag behind writes.
    incremental_overlap_s: float = Field(default=300.0, ge=0)
    timeout_s: float = Field(default=30.0, gt=0)
    retry_attempts: int = Field(default=6, ge=1)
    #: Seconds one call may keep retrying (waits included), and all of one job's calls.
    retry_call_budget_s: float = Field(default=30.0, gt=0)
    retry_job_budget_s: float = Field(default=300.0, gt=0)
    property_group: str = "ax_agent"
    property_group_label: str = "AX Agent"
    surveys: HubSpotSurveySettings = HubSpotSurveySettings()
