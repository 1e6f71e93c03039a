"""NPS answers from Salesforce Surveys and from a custom object."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import responses

from agent.config.settings import SalesforceSettings, SalesforceSurveySettings
from agent.core.models import Rejected, Response
from connectors.common.retry import RetryPolicy
from connectors.salesforce import SalesforceSurveySource, survey_source_from_settings
from connectors.salesforce.surveys import parse_score, parse_when
from tests.salesforce.fake import FakeField, FakeSalesforce

QUESTION = "0Qq000000000001AAA"


def _source(fake: FakeSalesforce, **survey: object) -> SalesforceSurveySource:
    sf = SalesforceSettings(
        session_id="fake-session",
        instance_url=fake.instance_url,
        survey=SalesforceSurveySettings.model_validate(survey),
    )
    policy = RetryPolicy(attempts=2, initial=0.01, maximum=0.01, sleep=lambda _s: None)
    source = survey_source_from_settings(sf, policy=policy)
    assert source is not None
    return source


def _read(source: SalesforceSurveySource, cursor: str | None = None):
    responses_, rejected, cursors = [], [], []
    for batch in source.read_responses(cursor):
        responses_.extend(batch.responses)
        rejected.extend(batch.rejected)
        cursors.append(batch.cursor)
    return responses_, rejected, cursors


@pytest.mark.parametrize(
    ("raw", "score"),
    [
        (9, 9),
        (9.0, 9),
        ("10", 10),
        ("07", 7),
        (0, 0),
        (7.5, None),
        (11, None),
        (-1, None),
        ("x", None),
        (None, None),
        (True, None),
    ],
)
def test_scores_must_be_whole_numbers_from_0_to_10(raw: object, score: int | None) -> None:
    assert parse_score(raw) == score


def test_dates_and_datetimes_are_timezone_aware() -> None:
    assert parse_when("2024-05-01T10:00:00.000+0000") == datetime(2024, 5, 1, 10, tzinfo=UTC)
    assert parse_when("2024-05-01") == datetime(2024, 5, 1, tzinfo=UTC)
    assert parse_when("soon") is None
    assert parse_when(None) is None


def _custom_object(fake: FakeSalesforce) -> None:
    for name, kind in [
        ("Id", "id"),
        ("Email__c", "email"),
        ("Score__c", "double"),
        ("Submitted_At__c", "datetime"),
        ("Driver__c", "picklist"),
        ("Comment__c", "textarea"),
        ("Account__c", "reference"),
        ("Loop_Closed_At__c", "datetime"),
        ("IsDeleted", "boolean"),
        ("SystemModstamp", "datetime"),
    ]:
        fake.org.add_field("NPS_Response__c", FakeField(name, kind))


def test_custom_object_answers_become_responses_and_bad_ones_are_rejected(
    fake: FakeSalesforce, mock: responses.RequestsMock
) -> None:
    _custom_object(fake)
    good = fake.org.insert(
        "NPS_Response__c",
        {
            "Email__c": " ann@acme.example ",
            "Score__c": 9.0,
            "Submitted_At__c": "2024-05-01T10:00:00.000+0000",
            "Driver__c": "Support",
            "Comment__c": "Great help",
            "Account__c": "001000000000001AAA",
            "Loop_Closed_At__c": None,
        },
    )
    bad_score = fake.org.insert(
        "NPS_Response__c",
        {
            "Email__c": "b@x.example",
            "Score__c": 7.5,
            "Submitted_At__c": "2024-05-01T10:00:00.000+0000",
        },
    )
    no_date = fake.org.insert("NPS_Response__c", {"Email__c": "c@x.example", "Score__c": 3})
    source = _source(
        fake,
        source="custom_object",
        driver_field="Driver__c",
        comment_field="Comment__c",
        account_field="Account__c",
        loop_closed_field="Loop_Closed_At__c",
    )
    accepted, rejected, cursors = _read(source)
    assert accepted == [
        Response(
            response_id=good,
            email="ann@acme.example",
            score=9,
            submitted_at=datetime(2024, 5, 1, 10, tzinfo=UTC),
            driver="Support",
            comment="Great help",
            account_hint="001000000000001AAA",
            loop_closed_at=None,
            source="salesforce:NPS_Response__c",
        )
    ]
    assert rejected == [
        Rejected(
            source=f"salesforce:NPS_Response__c/{bad_score}",
            position=2,
            reason="invalid_score",
            value="7.5",
        ),
        Rejected(
            source=f"salesforce:NPS_Response__c/{no_date}",
            position=3,
            reason="invalid_submitted_at",
        ),
    ]
    assert cursors[-1] == "2024-01-01T00:00:00.000Z"


def test_custom_object_reads_incrementally(
    fake: FakeSalesforce, mock: responses.RequestsMock
) -> None:
    _custom_object(fake)

    def answer(email: str) -> str:
        values = {"Email__c": email, "Score__c": 9, "Submitted_At__c": "2024-01-01"}
        return fake.org.insert("NPS_Response__c", values)

    answer("old@x.example")
    fake.org.tick(3600)
    latest = answer("latest@x.example")
    source = _source(fake, source="custom_object")
    *_, cursors = _read(source)
    fake.org.tick(3600)
    new = answer("new@x.example")
    accepted, _, cursors = _read(source, cursors[-1])
    # The new answer, and the latest one again (inside the overlap); not the old one.
    assert sorted(r.response_id for r in accepted) == sorted([latest, new])
    assert cursors[-1] == "2024-01-01T02:00:00.000Z"


def _surveys(fake: FakeSalesforce) -> None:
    for name, kind in [
        ("Id", "id"),
        ("ResponseId", "string"),
        ("QuestionId", "reference"),
        ("NumberValue", "int"),
        ("IsDeleted", "boolean"),
        ("SystemModstamp", "datetime"),
    ]:
        fake.org.add_field("SurveyQuestionResponse", FakeField(name, kind, updateable=False))
    for name, kind in [
        ("Id", "id"),
        ("CompletionDateTime", "datetime"),
        ("SubmitterId", "reference"),
        ("IsDeleted", "boolean"),
        ("SystemModstamp", "datetime"),
    ]:
        fake.org.add_field("SurveyResponse", FakeField(name, kind, updateable=False))


def test_salesforce_surveys_join_answers_with_their_submission(
    fake: FakeSalesforce, mock: responses.RequestsMock
) -> None:
    _surveys(fake)
    account = fake.org.insert("Account", {"Name": "Acme"})
    ann = fake.org.insert(
        "Contact", {"AccountId": account, "Email": "ann@acme.example", "Name": "Ann"}
    )
    done = fake.org.insert(
        "SurveyResponse", {"CompletionDateTime": "2024-04-02T08:15:00.000+0000", "SubmitterId": ann}
    )
    open_ = fake.org.insert("SurveyResponse", {"CompletionDateTime": None, "SubmitterId": ann})
    fake.org.insert(
        "SurveyQuestionResponse", {"ResponseId": done, "QuestionId": QUESTION, "NumberValue": 10}
    )
    fake.org.insert(
        "SurveyQuestionResponse", {"ResponseId": open_, "QuestionId": QUESTION, "NumberValue": 4}
    )
    fake.org.insert(
        "SurveyQuestionResponse",
        {"ResponseId": done, "QuestionId": "0Qq000000000999AAA", "NumberValue": 1},
    )
    accepted, rejected, _ = _read(_source(fake, source="surveys", question_id=QUESTION))
    assert [(r.response_id, r.email, r.score, r.submitted_at) for r in accepted] == [
        (done, "ann@acme.example", 10, datetime(2024, 4, 2, 8, 15, tzinfo=UTC))
    ]
    assert accepted[0].source == "salesforce:SurveyQuestionResponse"
    assert rejected == [
        Rejected(
            source=f"salesforce:SurveyResponse/{open_}", position=2, reason="invalid_submitted_at"
        )
    ]
    assert fake.calls["composite"] == 2  # the answers, then their submissions


def test_survey_settings_are_checked(fake: FakeSalesforce) -> None:
    sf = SalesforceSettings(session_id="s", instance_url=fake.instance_url)
    assert survey_source_from_settings(sf) is None
    sf = SalesforceSettings(
        session_id="s",
        instance_url=fake.instance_url,
        survey=SalesforceSurveySettings(source="surveys"),
    )
    with pytest.raises(ValueError, match="question_id"):
        survey_source_from_settings(sf)
