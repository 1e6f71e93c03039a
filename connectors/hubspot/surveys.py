"""HubSpot's own feedback surveys as a survey source.

Feedback submissions (``/crm/v3/objects/feedback_submissions``) carry the score
(``hs_response_value``), the answer text (``hs_content``), when it was submitted
(``hs_submission_timestamp``) and the survey type (only ``NPS`` ones are read by
default); every property name is configurable. The respondent's e-mail comes from the
submission's contact e-mail property, or, when that is empty, from its associated
contact (associations v4 batch read, then a contacts batch read: one call each per
page that needs it). A submission whose score is not a whole number 0-10 is rejected
with its position in the read, never dropped silently.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime, timedelta

import structlog

from agent.core.batching import chunked
from agent.core.models import Rejected, Response, reject_value
from agent.core.ports import SurveyBatch
from connectors.hubspot.associations import associated_ids
from connectors.hubspot.client import HubSpotApis
from connectors.hubspot.cursor import advance, format_cursor, parse_cursor, window
from connectors.hubspot.pages import list_pages, search_pages
from connectors.hubspot.records import HsRecord, results
from connectors.hubspot.settings import HubSpotSettings
from connectors.hubspot.transport import Transport
from connectors.hubspot.values import parse_datetime

__all__ = ["SUBMISSIONS", "HubSpotSurveySource", "parse_score"]

SUBMISSIONS = "feedback_submissions"
_SOURCE = f"hubspot:{SUBMISSIONS}"
_log = structlog.get_logger(__name__)


def parse_score(raw: str | None) -> int | None:
    """A score 0-10 written as ASCII digits (``07`` is 7; ``7.5``, ``+7``, ``11`` are not)."""
    text = (raw or "").strip()
    if not text or not text.isascii() or not text.isdigit():
        return None
    score = int(text)
    return score if 0 <= score <= 10 else None


class HubSpotSurveySource:
    """Feedback submissions in, Responses and Rejected rows out."""

    name = "hubspot"

    def __init__(
        self,
        *,
        apis: HubSpotApis,
        transport: Transport,
        settings: HubSpotSettings,
        clock: Callable[[], datetime],
    ) -> None:
        self._apis = apis
        self._transport = transport
        self._settings = settings
        self._survey = settings.surveys
        self._clock = clock

    def read_responses(self, cursor: str | None) -> Iterator[SurveyBatch]:
        """Every submission (``cursor`` None) or those modified since ``cursor``."""
        started = self._clock()
        previous = parse_cursor(cursor) if cursor else None
        latest: list[datetime | None] = []
        position = 0
        pending: SurveyBatch | None = None
        for page in self._pages(previous, started):
            latest.append(max((r.updated_at for r in page if r.updated_at), default=None))
            batch = self._batch(page, position)
            position += len(page)
            if pending is not None:
                yield pending
            pending = batch
        final = format_cursor(advance(previous, latest, started))
        yield SurveyBatch(
            responses=pending.responses if pending else (),
            rejected=pending.rejected if pending else (),
            cursor=final,
        )

    def _properties(self) -> list[str]:
        s = self._survey
        names = [
            s.type_property,
            s.score_property,
            s.comment_property,
            s.submitted_property,
            s.email_property,
            s.driver_property,
            s.modified_property,
        ]
        return list(dict.fromkeys(n for n in names if n))

    def _pages(self, previous: datetime | None, started: datetime) -> Iterator[Sequence[HsRecord]]:
        if previous is None:
            return list_pages(
                self._transport,
                self._apis,
                SUBMISSIONS,
                properties=self._properties(),
                page_size=self._settings.list_page_size,
            )
        overlap = timedelta(seconds=self._settings.incremental_overlap_s)
        return search_pages(
            self._transport,
            self._apis,
            SUBMISSIONS,
            date_property=self._survey.modified_property,
            window=window(previous, started, overlap),
            properties=self._properties(),
            page_size=self._settings.search_page_size,
        )

    def _batch(self, page: Sequence[HsRecord], offset: int) -> SurveyBatch:
        wanted = self._survey.survey_type
        rows = [
            (offset + i + 1, r)
            for i, r in enumerate(page)
            if wanted is None
            or (r.prop(self._survey.type_property) or "").upper() == wanted.upper()
        ]
        emails = self._emails([r for _, r in rows])
        responses: list[Response] = []
        rejected: list[Rejected] = []
        for position, record in rows:
            outcome = self._response(record, emails.get(record.id), position)
            if isinstance(outcome, Rejected):
                rejected.append(outcome)
            else:
                responses.append(outcome)
        if len(rows) < len(page):
            _log.debug("hubspot_non_nps_submissions_skipped", count=len(page) - len(rows))
        return SurveyBatch(responses=responses, rejected=rejected)

    def _response(self, record: HsRecord, email: str | None, position: int) -> Response | Rejected:
        s = self._survey
        raw_score = record.prop(s.score_property)
        score = parse_score(raw_score)
        if score is None:
            return Rejected(_SOURCE, position, "invalid_score", reject_value(raw_score))
        raw_submitted = record.prop(s.submitted_property)
        submitted = parse_datetime(raw_submitted) or record.created_at
        if submitted is None:
            return Rejected(_SOURCE, position, "invalid_submitted_at", reject_value(raw_submitted))
        return Response(
            response_id=record.id,
            email=email,
            score=score,
            submitted_at=submitted,
            driver=record.prop(s.driver_property),
            comment=record.prop(s.comment_property),
            source=self.name,
        )

    def _emails(self, records: Sequence[HsRecord]) -> dict[str, str | None]:
        emails = {r.id: r.prop(self._survey.email_property) for r in records}
        missing = [i for i, e in emails.items() if e is None]
        if not missing:
            return emails
        contact_of = associated_ids(
            self._transport,
            self._apis,
            SUBMISSIONS,
            "contacts",
            missing,
            batch_size=self._settings.association_batch_size,
        )
        contact_emails = self._contact_emails(sorted(set(contact_of.values())))
        for submission, contact in contact_of.items():
            emails[submission] = contact_emails.get(contact)
        return emails

    def _contact_emails(self, contact_ids: Sequence[str]) -> dict[str, str | None]:
        found: dict[str, str | None] = {}
        for chunk in chunked(contact_ids, 100):
            request = {
                "inputs": [{"id": i} for i in chunk],
                "properties": ["email"],
                "propertiesWithHistory": [],
            }
            response = self._transport.call(
                "contacts.read", self._apis.objects_batch.read, "contacts", request
            )
            for record in results(response):
                email = ((record.get("properties") or {}).get("email") or "").strip()
                found[str(record["id"])] = email or None
        return found
