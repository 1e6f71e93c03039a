"""NPS answers stored in Salesforce, as a ``SurveySource``.

Two layouts are read (``salesforce.survey.source``):

- ``surveys``: Salesforce Surveys. The answers to one NPS question are
  ``SurveyQuestionResponse`` rows (``NumberValue``, ``QuestionId``); the submitter's
  email and the completion time come from their ``SurveyResponse`` (one extra query
  per 200 answers).
- ``custom_object``: one record per answer in an object of your own, with the email,
  score, date and optional driver, comment, account and loop-closed fields named in
  the settings.

Both read incrementally by ``SystemModstamp`` like accounts and contacts. A record
that is not a valid answer (score not a whole number 0-10, no completion time) is
returned as ``Rejected`` with its record id, never dropped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog

from agent.core.models import Rejected, Response, reject_value
from agent.core.ports import SurveyBatch
from connectors.salesforce.client import SalesforceClient
from connectors.salesforce.cursor import advance, lower_bound, parse_stamp
from connectors.salesforce.query import QueryReader, Record
from connectors.salesforce.records import value_at
from connectors.salesforce.settings import SalesforceSurveySettings
from connectors.salesforce.soql import in_list, quote, select

__all__ = ["SalesforceSurveySource", "parse_score", "parse_when"]

_log = structlog.get_logger(__name__)
_IN_CHUNK = 200  # ids per IN (...) list: keeps the query URL well under Salesforce's limit


def parse_score(value: Any) -> int | None:
    """A whole number 0-10 (a Number field's ``9.0`` is 9), else None."""
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return None
    if not number.is_integer() or not 0 <= number <= 10:
        return None
    return int(number)


def parse_when(value: Any) -> datetime | None:
    """A Salesforce datetime, or a date read as midnight UTC; None when absent or bad."""
    if value is None or str(value).strip() == "":
        return None
    try:
        return parse_stamp(str(value))
    except ValueError:
        return None


class SalesforceSurveySource:
    """Responses from Salesforce Surveys or a custom object."""

    name = "salesforce"

    def __init__(
        self,
        client: SalesforceClient,
        settings: SalesforceSurveySettings,
        *,
        overlap: timedelta = timedelta(minutes=5),
        reader: QueryReader | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        if settings.source == "none":
            raise ValueError("salesforce.survey.source is 'none'")
        if settings.source == "surveys" and not settings.question_id:
            raise ValueError("salesforce.survey.question_id is needed for source 'surveys'")
        self._client = client
        self._settings = settings
        self._overlap = overlap
        self._reader = reader or QueryReader(client)
        self._clock = clock

    @property
    def sobject(self) -> str:
        return (
            "SurveyQuestionResponse"
            if self._settings.source == "surveys"
            else self._settings.object
        )

    def read_responses(self, cursor: str | None) -> Iterator[SurveyBatch]:
        started = self._clock()
        since = lower_bound(cursor, self._overlap)
        soql = select(
            self.sobject, [*self._fields(), "SystemModstamp"], since=since, where=self._where()
        )
        newest: datetime | None = None
        position = 0
        pending: SurveyBatch | None = None
        for page in self._reader.pages(soql):
            stamps = [
                parse_stamp(str(r["SystemModstamp"])) for r in page if r.get("SystemModstamp")
            ]
            newest = max([*stamps, *([newest] if newest else [])], default=None)
            rows = self._with_submissions(page) if self._settings.source == "surveys" else page
            batch = self._batch(rows, position)
            position += len(page)
            if pending is not None:
                yield pending
            pending = batch
        assert pending is not None  # a query always has a first page
        final = advance(cursor, newest, started)
        _log.info(
            "salesforce_survey_read", source=self._settings.source, answers=position, cursor=final
        )
        yield SurveyBatch(pending.responses, pending.rejected, cursor=final)

    def _fields(self) -> list[str]:
        s = self._settings
        if s.source == "surveys":
            return ["Id", "ResponseId", "NumberValue"]
        optional = [s.driver_field, s.comment_field, s.account_field, s.loop_closed_field]
        return [
            "Id",
            s.email_field,
            s.score_field,
            s.submitted_at_field,
            *[f for f in optional if f],
        ]

    def _where(self) -> list[str]:
        if self._settings.source == "surveys":
            return [f"QuestionId = {quote(str(self._settings.question_id))}"]
        return []

    def _with_submissions(self, page: Sequence[Record]) -> list[Record]:
        """Each answer joined with its SurveyResponse (completion time, submitter email)."""
        ids = sorted({str(r["ResponseId"]) for r in page if r.get("ResponseId")})
        submissions: dict[str, Record] = {}
        for start in range(0, len(ids), _IN_CHUNK):
            chunk = ids[start : start + _IN_CHUNK]
            soql = select(
                "SurveyResponse",
                ["Id", "CompletionDateTime", "Submitter.Email"],
                where=[f"Id IN {in_list(chunk)}"],
            )
            for sub_page in self._reader.pages(soql):
                submissions.update((str(r["Id"]), r) for r in sub_page)
        return [{**r, "_submission": submissions.get(str(r.get("ResponseId")), {})} for r in page]

    def _batch(self, rows: Sequence[Record], offset: int) -> SurveyBatch:
        responses: list[Response] = []
        rejected: list[Rejected] = []
        for index, row in enumerate(rows, start=offset + 1):
            result = self._response(row, index)
            (responses if isinstance(result, Response) else rejected).append(result)  # type: ignore[arg-type]
        return SurveyBatch(responses, rejected)

    def _response(self, row: Mapping[str, Any], position: int) -> Response | Rejected:
        answer = (
            self._survey_answer(row)
            if self._settings.source == "surveys"
            else self._custom_answer(row)
        )
        score = parse_score(answer.score)
        when = parse_when(answer.submitted_at)
        if score is None or when is None:
            reason = "invalid_score" if score is None else "invalid_submitted_at"
            raw = answer.score if score is None else answer.submitted_at
            return Rejected(answer.source, position, reason, reject_value(raw))
        return Response(
            response_id=answer.record_id,
            email=answer.email,
            score=score,
            submitted_at=when,
            driver=answer.driver,
            comment=answer.comment,
            account_hint=answer.account_hint,
            loop_closed_at=parse_when(answer.loop_closed_at),
            source=f"salesforce:{self.sobject}",
        )

    def _survey_answer(self, row: Mapping[str, Any]) -> _Answer:
        submission: Mapping[str, Any] = row.get("_submission", {})
        record_id = str(row["ResponseId"])
        return _Answer(
            record_id=record_id,
            source=f"salesforce:SurveyResponse/{record_id}",
            score=row.get("NumberValue"),
            submitted_at=submission.get("CompletionDateTime"),
            email=_optional(submission, "Submitter.Email"),
        )

    def _custom_answer(self, row: Mapping[str, Any]) -> _Answer:
        s = self._settings
        record_id = str(row["Id"])
        return _Answer(
            record_id=record_id,
            source=f"salesforce:{s.object}/{record_id}",
            score=value_at(row, s.score_field),
            submitted_at=value_at(row, s.submitted_at_field),
            email=_optional(row, s.email_field),
            driver=_optional(row, s.driver_field),
            comment=_optional(row, s.comment_field),
            account_hint=_optional(row, s.account_field),
            loop_closed_at=value_at(row, s.loop_closed_field) if s.loop_closed_field else None,
        )


@dataclass(frozen=True, slots=True)
class _Answer:
    """One answer's raw parts, whichever layout it came from."""

    record_id: str
    source: str
    score: Any
    submitted_at: Any
    email: str | None
    driver: str | None = None
    comment: str | None = None
    account_hint: str | None = None
    loop_closed_at: Any = None


def _optional(row: Mapping[str, Any], field: str | None) -> str | None:
    if field is None:
        return None
    value = value_at(row, field)
    text = str(value).strip() if value is not None else ""
    return text or None
