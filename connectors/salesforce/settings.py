"""Salesforce's own settings: the ``salesforce:`` block of the agent's configuration.

Plain pydantic models with no SDK import, so reading the configuration does not load
the Salesforce client.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

__all__ = ["SalesforceSettings", "SalesforceSurveySettings"]


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SalesforceSurveySettings(_Block):
    """Where NPS answers live in Salesforce, when they do (``source: none`` by default).

    ``surveys`` reads Salesforce Surveys: the answers to one NPS question
    (``question_id``, a SurveyQuestion id) with the submitter's email and completion
    time of their SurveyResponse. ``custom_object`` reads one record per answer from an
    object of your own with the fields named here.
    """

    source: Literal["none", "surveys", "custom_object"] = "none"
    question_id: str | None = None
    object: str = "NPS_Response__c"
    email_field: str = "Email__c"
    score_field: str = "Score__c"
    submitted_at_field: str = "Submitted_At__c"
    driver_field: str | None = None
    comment_field: str | None = None
    account_field: str | None = None
    loop_closed_field: str | None = None


class SalesforceSettings(_Block):
    """Connection, read mapping, limits and write-back sizes for Salesforce.

    Auth is inferred from what is set, or chosen with ``auth``: ``password``
    (username + password + security_token), ``jwt`` (username + consumer_key +
    private_key_file, OAuth 2.0 JWT bearer) or ``session`` (session_id +
    instance_url). ``domain`` is ``login``, ``test`` (sandbox) or a My Domain such as
    ``acme.my``.
    """

    auth: Literal["password", "jwt", "session"] | None = None
    username: str | None = None
    password: SecretStr | None = None
    security_token: SecretStr | None = None
    consumer_key: str | None = None
    private_key_file: Path | None = None
    session_id: SecretStr | None = None
    instance_url: str | None = None
    domain: str = "login"
    api_version: str = Field(default="62.0", pattern=r"^\d+\.0$")
    timeout_seconds: float = Field(default=120.0, gt=0)
    #: Seconds one call may keep retrying (waits included), and all of one job's calls.
    retry_call_budget_s: float = Field(default=30.0, gt=0)
    retry_job_budget_s: float = Field(default=300.0, gt=0)
    revenue_field: str = "AnnualRevenue"
    potential_field: str | None = None
    tier_field: str | None = None
    domain_fields: list[str] = Field(default_factory=lambda: ["Website"])
    extra_fields: list[str] = Field(default_factory=list)
    #: Seconds re-read before the stored cursor, for clock skew and late commits.
    cursor_overlap_seconds: int = Field(default=300, ge=0)
    #: Reads whose first page reports more records than this switch to Bulk API 2.0.
    bulk_threshold: int | None = Field(default=1_000_000, gt=0)
    bulk_poll_seconds: float = Field(default=5.0, gt=0)
    #: Share of the org's remaining daily API allowance one run may use.
    budget_run_share: float = Field(default=0.25, gt=0, le=1)
    #: Never make a call once the org has used this share of its daily allowance.
    budget_max_used_share: float = Field(default=0.80, gt=0, le=1)
    #: Records per sObject Collection (Salesforce allows at most 200).
    collection_size: int = Field(default=200, ge=1, le=200)
    #: sObject Collections packed into one Composite request (Salesforce allows 5).
    collections_per_request: int = Field(default=5, ge=1, le=5)
    use_composite: bool = True
    survey: SalesforceSurveySettings = SalesforceSurveySettings()
