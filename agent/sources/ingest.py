"""Survey records in, accepted ``Response`` values or ``Rejected`` positions out.

A record is a mapping of field name to raw value (text from a CSV file, JSON values
from a JSON Lines file or a webhook), so the same rules serve every way a response
arrives. Nothing is dropped silently: every record becomes a Response, a Rejected
entry with its position and reason, or (an exact repeat of an earlier record) nothing.
The rules are DOMAIN.md's "Precise rules"; the reasons and their precedence are
``REJECTION_REASONS``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from agent.core.models import Rejected, Response, reject_value, slot_setters

if TYPE_CHECKING:
    from agent.sources.csvrecords import CsvRows

__all__ = [
    "DUPLICATE_RESPONSE_ID",
    "FUTURE_SUBMITTED_AT",
    "INVALID_RECORD",
    "INVALID_SCORE",
    "INVALID_SUBMITTED_AT",
    "MISSING_RESPONSE_ID",
    "REJECTION_REASONS",
    "ResponseReader",
    "accept_rows",
    "json_record",
    "parse_response_row",
    "parse_score",
    "parse_timestamp",
    "reject_value",
    "response_id_of",
    "trim",
]

MISSING_RESPONSE_ID = "missing_response_id"
DUPLICATE_RESPONSE_ID = "duplicate_response_id"
INVALID_SCORE = "invalid_score"
INVALID_SUBMITTED_AT = "invalid_submitted_at"
FUTURE_SUBMITTED_AT = "future_submitted_at"
#: A record that is not a set of fields at all (a JSON Lines line that is not an object).
INVALID_RECORD = "invalid_record"

#: The field whose raw value a reject shows, per reason (the others show the record).
_OFFENDING_FIELD = {
    MISSING_RESPONSE_ID: "response_id",
    DUPLICATE_RESPONSE_ID: "response_id",
    INVALID_SCORE: "score",
    INVALID_SUBMITTED_AT: "submitted_at",
    FUTURE_SUBMITTED_AT: "submitted_at",
}

#: DOMAIN.md's reasons, highest precedence first (``invalid_record`` stands before all).
REJECTION_REASONS: tuple[str, ...] = (
    INVALID_RECORD,
    MISSING_RESPONSE_ID,
    DUPLICATE_RESPONSE_ID,
    INVALID_SCORE,
    INVALID_SUBMITTED_AT,
    FUTURE_SUBMITTED_AT,
)

_TRIM = " \t"
_TIMESTAMP = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?:Z|[+-]\d{2}:\d{2})?",
    re.ASCII,
)
_DIGITS = re.compile(r"[0-9]+", re.ASCII)
_fromisoformat = datetime.fromisoformat
#: The scores as a CSV file writes them (``0`` to ``10``): read without the checks.
_PLAIN_SCORES = {str(n): n for n in range(11)}
#: The columns of a responses file: (required, known), DOMAIN.md's order.
RESPONSE_COLUMNS = (
    ("response_id", "email", "score", "submitted_at"),
    ("driver", "comment", "account_hint", "loop_closed_at"),
)
#: The fields of a response record, in the order ``ResponseReader.feed_csv`` reads them.
_CSV_FIELDS = (*RESPONSE_COLUMNS[0], *RESPONSE_COLUMNS[1])


def trim(value: object) -> str:
    """The text of a raw value with leading/trailing spaces and tabs removed.

    ``None`` is empty; JSON integers become their decimal text (an id or hint
    given as a number); any other non-text value is treated as empty.
    """
    if isinstance(value, str):
        return value.strip(_TRIM)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return ""


def json_record(text: str) -> dict[str, object] | None:
    """One JSON Lines record as a mapping, or ``None`` when it is not one.

    Not one: not JSON, not an object, nested too deep for the parser, or holding a
    text value that is not Unicode (a lone surrogate escape such as ``"\\ud800"``,
    which could be neither stored nor shown).
    """
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, dict):
        return None
    for key, item in value.items():
        if not _unicode(key) or (isinstance(item, str) and not _unicode(item)):
            return None
    return value


def _unicode(text: str) -> bool:
    """Whether ``text`` is valid Unicode (no lone surrogates)."""
    if text.isascii():
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _optional(value: object) -> str | None:
    text = trim(value)
    return text or None


def parse_score(value: object, *, json_mode: bool = False) -> int | None:
    """An integer 0-10, or ``None`` when the value is not a valid score.

    Text must be ASCII digits only once trimmed (``07`` is 7; ``7.0``, ``+7`` are
    not). In JSON Lines an integer number is valid too (but not ``true`` or ``7.0``).
    """
    if json_mode and isinstance(value, int) and not isinstance(value, bool):
        return value if 0 <= value <= 10 else None
    if not isinstance(value, str):
        return None
    text = value.strip(_TRIM)
    if not _DIGITS.fullmatch(text):
        return None
    score = int(text)
    return score if score <= 10 else None


def parse_timestamp(value: object) -> datetime | None:
    """``YYYY-MM-DDTHH:MM:SS[.ffffff][Z|±HH:MM]`` as an aware UTC datetime, else ``None``.

    A timestamp without a zone is read as UTC.
    """
    if not isinstance(value, str):
        return None
    # The canonical form (``2025-06-01T12:00:00Z``, what CRMs and survey tools write),
    # without the pattern: twenty characters with the six separators in place leave only
    # digits for ``fromisoformat`` to accept (it refuses anything else in those places),
    # and its ``Z`` is already ``UTC``. Any other text, or one it refuses, takes the
    # general path (``_any_timestamp``), which decides.
    if len(value) == 20 and value[4::3] == "--T::Z":
        try:
            return _fromisoformat(value)
        except ValueError:
            pass
    return _any_timestamp(value)


def _any_timestamp(value: str) -> datetime | None:
    """``parse_timestamp`` of any text: trimmed, the pattern, then the calendar."""
    text = value.strip(_TRIM)
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        return None
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:  # e.g. month 13 or hour 25: the shape fits, the date does not
        return None
    zone = parsed.tzinfo
    if zone is UTC:  # ``Z`` (the common case): already UTC, nothing to convert
        return parsed
    if zone is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def response_id_of(row: Mapping[str, object]) -> str:
    """The trimmed response id of a record; empty when it is missing."""
    return trim(row.get("response_id"))


def parse_response_row(
    row: Mapping[str, object],
    *,
    source: str,
    as_of: datetime,
    json_mode: bool = False,
) -> Response | str:
    """One record as a Response, or the reason it is rejected.

    Checks everything except repeats (which need the records before it, see
    ``ResponseReader``), in DOMAIN.md's precedence.
    """
    response_id = response_id_of(row)
    if not response_id:
        return MISSING_RESPONSE_ID
    score = parse_score(row.get("score"), json_mode=json_mode)
    if score is None:
        return INVALID_SCORE
    submitted_at = parse_timestamp(row.get("submitted_at"))
    if submitted_at is None:
        return INVALID_SUBMITTED_AT
    if submitted_at > as_of:
        return FUTURE_SUBMITTED_AT
    return Response(
        response_id=response_id,
        email=_optional(row.get("email")),
        score=score,
        submitted_at=submitted_at,
        driver=_optional(row.get("driver")),
        comment=_optional(row.get("comment")),
        account_hint=_optional(row.get("account_hint")),
        loop_closed_at=parse_timestamp(row.get("loop_closed_at")),
        source=source,
    )


# ``Response(...)`` for the million records of a large file, each field's slot set
# directly (``slot_setters``): the same object, without the frozen ``__init__``.
_new_response = object.__new__
(
    _set_id,
    _set_email,
    _set_score,
    _set_submitted,
    _set_driver,
    _set_comment,
    _set_hint,
    _set_closed,
    _set_source,
) = slot_setters(Response, (*_CSV_FIELDS, "source"))


def _fingerprint(row: Mapping[str, object], raw: str | None) -> str:
    """The record's exact content, for comparing repeats: its text when the caller has
    it, else its fields. The text itself rather than a digest of it: hashing every
    record cost more than keeping it, and an equal text is an exact repeat."""
    return raw if raw is not None else repr(tuple(row.items()))


class ResponseReader:
    """Accepts the records of one source in order; remembers ids to spot repeats.

    Positions are 1-based and count every record fed (blank records must not be fed).
    A repeat of a response id is compared with the *first* record carrying that id,
    valid or not: an identical repeat is ignored, any other is ``duplicate_response_id``.
    """

    def __init__(self, source: str, as_of: datetime, *, json_mode: bool = False) -> None:
        if as_of.tzinfo is None:
            as_of = as_of.replace(tzinfo=UTC)
        self.source = source
        self.as_of = as_of
        self.json_mode = json_mode
        self.position = 0
        self.responses: list[Response] = []
        self.rejected: list[Rejected] = []
        self._first: dict[str, str] = {}

    def held_ids(self) -> set[str]:
        """The response ids whose first record was not accepted: a later record with one
        of them is compared with that record, which no store holds."""
        accepted = {r.response_id for r in self.responses}
        return {rid for rid in self._first if rid not in accepted}

    def seen_ids(self) -> set[str]:
        """Every response id a record fed so far carried."""
        return set(self._first)

    def feed(self, row: Mapping[str, object] | None, *, raw: str | None = None) -> None:
        """Take the next record; ``None`` stands for a record that is not a mapping.

        ``raw`` is the record's exact text when the caller has it (a file line);
        without it the mapping's items are compared.
        """
        self.position += 1
        if row is None:
            self._reject(INVALID_RECORD, raw or "")
            return
        response_id = response_id_of(row)
        if response_id:
            fingerprint = _fingerprint(row, raw)
            first = self._first.get(response_id)
            if first is None:
                self._first[response_id] = fingerprint
            else:
                if first != fingerprint:
                    self._reject(DUPLICATE_RESPONSE_ID, row.get("response_id"))
                return
        parsed = parse_response_row(
            row, source=self.source, as_of=self.as_of, json_mode=self.json_mode
        )
        if isinstance(parsed, str):
            self._reject(parsed, row.get(_OFFENDING_FIELD.get(parsed, "")))
        else:
            self.responses.append(parsed)

    def feed_csv(self, rows: CsvRows) -> None:  # noqa: PLR0915  # each record's steps inline
        """``feed`` for every record of a CSV file (a column the file does not have reads
        as empty), without a mapping or a call per record: the same rules, in the same
        precedence; a record's exact text stands for it when repeats are compared."""
        source, as_of = self.source, self.as_of
        first_of = self._first.setdefault
        accept = self.responses.append
        reject = self._reject
        plain_scores = _PLAIN_SCORES
        # A survey has a handful of drivers: one string each, not one per record.
        drivers: dict[str, str] = {}
        one_driver = drivers.setdefault
        columns: list[int] | None = None
        i_id = i_email = i_score = i_submitted = i_driver = i_comment = i_hint = i_closed = 0
        for _position, row, raw, fault, value in rows:
            self.position += 1
            if fault is not None:
                reject(fault, value)
                continue
            if columns is None:  # the header is read: where each field is (-1: no such column)
                columns = [rows.index.get(name, -1) for name in _CSV_FIELDS]
                i_id, i_email, i_score, i_submitted, i_driver, i_comment, i_hint, i_closed = columns
            row.append("")  # what a column the file does not have reads (index -1)
            response_id = row[i_id]
            rid = response_id.strip(_TRIM)
            if not rid:
                reject(MISSING_RESPONSE_ID, response_id)
                continue
            # One lookup: the first record of an id stores its own text, so getting back
            # another object means the id was seen (no two records share a text object).
            first = first_of(rid, raw)
            if first is not raw:
                if first != raw:
                    reject(DUPLICATE_RESPONSE_ID, response_id)
                continue
            score_raw = row[i_score]
            score = plain_scores.get(score_raw)
            if score is None:
                score = parse_score(score_raw)
                if score is None:
                    reject(INVALID_SCORE, score_raw)
                    continue
            submitted_raw = row[i_submitted]
            submitted = parse_timestamp(submitted_raw)
            if submitted is None:
                reject(INVALID_SUBMITTED_AT, submitted_raw)
                continue
            if submitted > as_of:
                reject(FUTURE_SUBMITTED_AT, submitted_raw)
                continue
            closed = row[i_closed]
            response = _new_response(Response)
            _set_id(response, rid)
            _set_email(response, row[i_email].strip(_TRIM) or None)
            _set_score(response, score)
            _set_submitted(response, submitted)
            driver = row[i_driver].strip(_TRIM)
            _set_driver(response, one_driver(driver, driver) if driver else None)
            _set_comment(response, row[i_comment].strip(_TRIM) or None)
            _set_hint(response, row[i_hint].strip(_TRIM) or None)
            _set_closed(response, parse_timestamp(closed) if closed else None)
            _set_source(response, source)
            accept(response)

    def feed_fault(self, reason: str, value: str) -> None:
        """Take the next record, which could not be read (``wrong_field_count`` …)."""
        self.position += 1
        self._reject(reason, value)

    def _reject(self, reason: str, value: object) -> None:
        self.rejected.append(
            Rejected(
                source=self.source,
                position=self.position,
                reason=reason,
                value=reject_value(value),
            )
        )


def accept_rows(
    rows: Iterable[Mapping[str, object]],
    source: str,
    as_of: datetime,
    *,
    json_mode: bool = False,
) -> tuple[list[Response], list[Rejected]]:
    """All records of one source, in order: the accepted responses and the rejected ones."""
    reader = ResponseReader(source, as_of, json_mode=json_mode)
    for row in rows:
        reader.feed(row)
    return reader.responses, reader.rejected
