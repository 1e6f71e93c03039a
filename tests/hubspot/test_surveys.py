"""HubSpot feedback submissions as NPS responses."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from agent.config.settings import HubSpotSettings
from agent.core.models import Rejected
from connectors.hubspot import HubSpotConnector, HubSpotSurveySource, survey_source_from_settings
from tests.hubspot.fakeportal import FakePortal

MakeConnector = Callable[..., HubSpotConnector]
HOUR = 3_600_000


def _source(make_connector: MakeConnector, **surveys: object) -> HubSpotSurveySource:
    source = make_connector(surveys={"enabled": True, **surveys}).survey_source()
    assert source is not None
    return source


def test_nps_submissions_become_responses(
    portal: FakePortal, make_connector: MakeConnector
) -> None:
    nps = portal.add_submission(
        hs_survey_type="NPS",
        hs_response_value="9",
        hs_content="Great support",
        hs_submission_timestamp="2026-02-10T09:30:00.000Z",
        hs_contact_email_rollup="jane@acme.com",
    )
    portal.add_submission(
        hs_survey_type="CSAT", hs_response_value="4", hs_contact_email_rollup="x@y.z"
    )

    [batch] = list(_source(make_connector).read_responses(None))

    [response] = batch.responses
    assert response.response_id == nps
    assert response.email == "jane@acme.com"
    assert response.score == 9
    assert response.submitted_at == datetime(2026, 2, 10, 9, 30, tzinfo=UTC)
    assert response.comment == "Great support"
    assert response.driver is None
    assert response.source == "hubspot"
    assert list(batch.rejected) == []
    assert batch.cursor is not None
    [call] = portal.calls("GET", "/crm/v3/objects/feedback_submissions")
    assert set(call.query["properties"]) >= {
        "hs_survey_type",
        "hs_response_value",
        "hs_content",
        "hs_submission_timestamp",
        "hs_contact_email_rollup",
    }
    assert call.query["limit"] == ["100"]


def test_bad_scores_are_rejected_with_their_position(
    portal: FakePortal, make_connector: MakeConnector
) -> None:
    common = {"hs_survey_type": "NPS", "hs_submission_timestamp": "2026-02-10T09:30:00Z"}
    portal.add_submission(hs_response_value="10", hs_contact_email_rollup="a@b.c", **common)
    portal.add_submission(hs_response_value="7.5", hs_contact_email_rollup="a@b.c", **common)
    portal.add_submission(hs_response_value="", hs_contact_email_rollup="a@b.c", **common)
    portal.add_submission(hs_response_value="11", hs_contact_email_rollup="a@b.c", **common)

    [batch] = list(_source(make_connector).read_responses(None))

    assert [r.score for r in batch.responses] == [10]
    source = "hubspot:feedback_submissions"
    assert list(batch.rejected) == [
        Rejected(source, 2, "invalid_score", "7.5"),
        Rejected(source, 3, "invalid_score", ""),
        Rejected(source, 4, "invalid_score", "11"),
    ]


def test_the_email_comes_from_the_associated_contact_when_missing(
    portal: FakePortal, make_connector: MakeConnector
) -> None:
    contact = portal.add_contact(email="bob@acme.com")
    with_contact = portal.add_submission(
        contact=contact, hs_survey_type="NPS", hs_response_value="3"
    )
    orphan = portal.add_submission(hs_survey_type="NPS", hs_response_value="8")

    [batch] = list(_source(make_connector).read_responses(None))

    emails = {r.response_id: r.email for r in batch.responses}
    assert emails == {with_contact: "bob@acme.com", orphan: None}
    [links] = portal.calls("POST", "/crm/v4/associations/feedback_submissions/contacts/batch/read")
    assert links.body == {"inputs": [{"id": with_contact}, {"id": orphan}]}
    [read] = portal.calls("POST", "/crm/v3/objects/contacts/batch/read")
    assert read.body == {
        "inputs": [{"id": contact}],
        "properties": ["email"],
        "propertiesWithHistory": [],
    }


def test_the_submission_time_falls_back_to_creation(
    portal: FakePortal, make_connector: MakeConnector
) -> None:
    portal.add_submission(
        hs_survey_type="NPS", hs_response_value="6", hs_contact_email_rollup="a@b.c"
    )
    [batch] = list(_source(make_connector).read_responses(None))
    record = next(iter(portal.stores["feedback_submissions"].live.values()))
    assert batch.responses[0].submitted_at == datetime.fromtimestamp(record.created_ms / 1000, UTC)


def test_a_configured_driver_question_and_all_survey_types(
    portal: FakePortal, make_connector: MakeConnector
) -> None:
    portal.define("feedback_submissions", "main_reason", "string", "text")
    portal.add_submission(
        hs_survey_type="CSAT",
        hs_response_value="5",
        main_reason="Support",
        hs_contact_email_rollup="a@b.c",
    )
    source = _source(make_connector, driver_property="main_reason", survey_type=None)
    [batch] = list(source.read_responses(None))
    assert [(r.score, r.driver) for r in batch.responses] == [(5, "Support")]


def test_new_submissions_are_read_incrementally(
    portal: FakePortal, make_connector: MakeConnector
) -> None:
    portal.add_submission(
        hs_survey_type="NPS", hs_response_value="9", hs_contact_email_rollup="a@b.c"
    )
    source = _source(make_connector)
    cursor = list(source.read_responses(None))[-1].cursor
    portal.tick(HOUR)
    new = portal.add_submission(
        hs_survey_type="NPS", hs_response_value="2", hs_contact_email_rollup="c@d.e"
    )

    batches = list(source.read_responses(cursor))

    assert new in [r.response_id for b in batches for r in b.responses]
    [search] = portal.calls("POST", "/crm/v3/objects/feedback_submissions/search")
    assert search.body["filterGroups"][0]["filters"][0]["propertyName"] == "hs_lastmodifieddate"


def test_surveys_are_off_unless_enabled(make_connector: MakeConnector) -> None:
    assert make_connector().survey_source() is None


def test_a_survey_source_on_its_own(portal: FakePortal, base_url: str) -> None:
    portal.add_submission(
        hs_survey_type="NPS", hs_response_value="10", hs_contact_email_rollup="a@b.c"
    )
    settings = HubSpotSettings(access_token=portal.token, base_url=base_url)
    source = survey_source_from_settings(settings)
    assert source.name == "hubspot"
    assert [r.score for b in source.read_responses(None) for r in b.responses] == [10]
