"""Reading the plain-file CRM folder of DOMAIN.md (the embedded default and test format).

``accounts.csv``, ``contacts.csv``, and ``responses.csv`` and/or ``responses.jsonl``
(both read when both exist, CSV first), plus the agent's own write-back files
``ax_accounts.csv`` / ``ax_contacts.csv`` (id, then one column per written field).

Files are UTF-8 (a byte-order mark is allowed); records are counted as
``agent.sources.csvrecords`` says (1-based data records, blank records skipped, short
records padded, extra fields ignored).

Bad rows never stop a run: they are returned as ``Rejected`` (file name, position,
reason, offending value), and account and contact rows that are not used in the
figures are listed as ``Dropped``. Bad *files* do: a missing folder or file raises
``CrmFileNotFoundError`` (a ``FileNotFoundError``), a file that cannot be read as
UTF-8 or whose header lacks a required column raises ``CrmFormatError`` (a
``ValueError``), each naming the file.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import structlog

from agent.core.compute import Excluded
from agent.core.models import (
    NO_VALUES,
    Account,
    Contact,
    Dropped,
    Rejected,
    Response,
    shared_text,
    slot_setters,
)
from agent.sources.csvrecords import (
    CrmFileNotFoundError,
    CrmFormatError,
    CsvRecord,
    CsvRows,
    clip,
    read_csv_records,
    without_terminator,
)
from agent.sources.ingest import RESPONSE_COLUMNS, ResponseReader, json_record, trim

__all__ = [
    "ACCOUNTS_FILE",
    "ACCOUNT_COLUMNS",
    "CONTACTS_FILE",
    "CONTACT_COLUMNS",
    "RESPONSES_CSV",
    "RESPONSES_JSONL",
    "RESPONSE_COLUMNS",
    "WRITTEN_ACCOUNTS_FILE",
    "WRITTEN_CONTACTS_FILE",
    "CrmFileNotFoundError",
    "CrmFolder",
    "CrmFormatError",
    "CsvRecord",
    "WrittenRows",
    "read_accounts",
    "read_appended_responses",
    "read_contacts",
    "read_crm_folder",
    "read_csv_records",
    "read_response_file",
    "read_responses",
    "read_responses_with_csv",
    "read_written",
]

log = structlog.get_logger(__name__)

ACCOUNTS_FILE = "accounts.csv"
CONTACTS_FILE = "contacts.csv"
RESPONSES_CSV = "responses.csv"
RESPONSES_JSONL = "responses.jsonl"
WRITTEN_ACCOUNTS_FILE = "ax_accounts.csv"
WRITTEN_CONTACTS_FILE = "ax_contacts.csv"

#: Required columns of each file (DOMAIN.md), then the other columns it knows.
ACCOUNT_COLUMNS = (("id", "revenue"), ("name", "domain", "revenue_potential", "owner_email"))
CONTACT_COLUMNS = (("id", "account_id", "email"), ("name", "title", "tier"))

#: Row rejection reasons of accounts.csv / contacts.csv.
MISSING_ID = "missing_id"
DUPLICATE_ID = "duplicate_id"
INVALID_REVENUE = "invalid_revenue"
INVALID_REVENUE_POTENTIAL = "invalid_revenue_potential"
#: Why a contact row is not used (its ``dropped`` reason).
MISSING_EMAIL = "missing_email"
ACCOUNT_REJECTED = "account_rejected"
UNKNOWN_ACCOUNT = "unknown_account"

_ACCOUNT_FIELDS = frozenset(ACCOUNT_COLUMNS[0] + ACCOUNT_COLUMNS[1])
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)


@dataclass(frozen=True, slots=True)
class CrmFolder:
    """Everything read from a CRM folder, ready for ``compute_document``."""

    accounts: list[Account]
    contacts: list[Contact]
    responses: list[Response]
    rejected: list[Rejected] = field(default_factory=list)
    excluded: Excluded = field(default_factory=Excluded)


def _number(text: str) -> float | None:
    """A plain decimal number (``1200.50``, ``1e6``); not ``1,000``, ``nan`` or ``inf``."""
    if not _NUMBER.fullmatch(text):
        return None
    value = float(text)
    return value if math.isfinite(value) else None


class _Rows:
    """Collects one file's rejected and dropped rows and logs them once."""

    def __init__(
        self, name: str, rejected: list[Rejected] | None, excluded: Excluded | None
    ) -> None:
        self.name = name
        self.rejected = rejected if rejected is not None else []
        self.excluded = excluded if excluded is not None else Excluded()
        self.count = 0
        self.dropped = 0
        self.seen: set[str] = set()

    def reject(self, position: int, reason: str, value: str) -> None:
        """The row is refused (a fault in it), and so not used either."""
        self.count += 1
        self.rejected.append(Rejected(self.name, position, reason, clip(value)))
        self.drop(position, reason)

    def drop(self, position: int, reason: str) -> None:
        self.dropped += 1
        self.excluded.dropped.append(Dropped(self.name, position, reason))

    def new_id(self, record: CsvRecord) -> str | None:
        """The record's id when it is readable, present and not seen before; else rejected."""
        if record.fault is not None:
            self.reject(record.position, record.fault, record.fault_value)
            return None
        return self.new_id_text(record.position, record.fields.get("id", ""))

    def new_id_text(self, position: int, raw_id: str) -> str | None:
        """``raw_id``, trimmed, when present and not seen before; else rejected."""
        record_id = raw_id.strip(" \t")
        if not record_id:
            self.reject(position, MISSING_ID, raw_id)
            return None
        if record_id in self.seen:
            self.reject(position, DUPLICATE_ID, raw_id)
            return None
        self.seen.add(record_id)
        return record_id

    def done(self) -> None:
        if self.count:
            log.warning("crm_file.rows_rejected", file=self.name, rejected=self.count)
        if self.dropped > self.count:
            log.info("crm_file.rows_dropped", file=self.name, dropped=self.dropped - self.count)


def read_accounts(
    path: Path,
    *,
    rejected: list[Rejected] | None = None,
    written: Mapping[str, Mapping[str, str]] | None = None,
    excluded: Excluded | None = None,
) -> list[Account]:
    """The accounts of an ``accounts.csv``; bad rows go to ``rejected``.

    Rejection reasons: ``missing_id``, ``duplicate_id`` (the first row of an id
    wins), ``invalid_revenue`` (not a number, negative), ``invalid_revenue_potential``,
    and the record faults of ``agent.sources.csvrecords``. Each rejected row is also
    in ``excluded.dropped``, and a rejected account that has an id or domains is kept
    in ``excluded.accounts`` (so its responses are told apart from unknown senders).
    ``written`` (from ``read_written``) fills ``crm_values``.
    """
    rows = _Rows(path.name, rejected, excluded)
    accounts: list[Account] = []
    required, known = ACCOUNT_COLUMNS
    for record in read_csv_records(path, required=required, known=(*required, *known)):
        account = _account(record, rows, written or {})
        if account is not None:
            accounts.append(account)
    rows.done()
    return accounts


def _account(
    record: CsvRecord, rows: _Rows, written: Mapping[str, Mapping[str, str]]
) -> Account | None:
    account_id = rows.new_id(record)
    if account_id is None:
        if record.fault is None and not trim(record.fields.get("id")):
            _left_out(record, rows, f"{rows.name}:{record.position}")
        return None
    fields = record.fields
    revenue_raw = fields.get("revenue", "")
    revenue_text = trim(revenue_raw)
    revenue = _number(revenue_text) if revenue_text else 0.0
    if revenue is None or revenue < 0:
        rows.reject(record.position, INVALID_REVENUE, revenue_raw)
        _left_out(record, rows, account_id)
        return None
    potential_raw = fields.get("revenue_potential", "")
    potential_text = trim(potential_raw)
    potential = _number(potential_text) if potential_text else None
    if potential_text and (potential is None or potential < 0):
        rows.reject(record.position, INVALID_REVENUE_POTENTIAL, potential_raw)
        _left_out(record, rows, account_id)
        return None
    return Account(
        id=account_id,
        name=trim(fields.get("name")),
        domains=_domains(fields),
        revenue=revenue,
        revenue_potential=potential,
        owner_email=trim(fields.get("owner_email")) or None,
        attributes={k: trim(v) for k, v in fields.items() if k not in _ACCOUNT_FIELDS},
        crm_values=written.get(account_id) or NO_VALUES,
    )


def _domains(fields: Mapping[str, str]) -> tuple[str, ...]:
    return tuple(p for p in (trim(d) for d in fields.get("domain", "").split(";")) if p)


def _left_out(record: CsvRecord, rows: _Rows, account_id: str) -> None:
    """Keep a rejected account's id and domains, to recognise its responses."""
    rows.excluded.accounts.append(
        Account(
            id=account_id, name=trim(record.fields.get("name")), domains=_domains(record.fields)
        )
    )


# ``Contact(...)`` for the half million rows of a large file, without the frozen
# ``__init__`` (``slot_setters``): the same value in a third of the time.
_new_contact = object.__new__
(
    _set_contact_id,
    _set_contact_account,
    _set_contact_email,
    _set_contact_name,
    _set_contact_title,
    _set_contact_tier,
    _set_contact_values,
) = slot_setters(Contact, ("id", "account_id", "email", "name", "title", "crm_tier", "crm_values"))


def read_contacts(
    path: Path,
    account_ids: Collection[str],
    *,
    rejected: list[Rejected] | None = None,
    written: Mapping[str, Mapping[str, str]] | None = None,
    excluded: Excluded | None = None,
    share_emails: bool = False,
) -> list[Contact]:
    """The contacts of a ``contacts.csv`` that belong to one of ``account_ids``.

    Repeated text (account ids, titles, tiers) is held once. ``share_emails``: each
    email as the one shared copy too, for contacts kept beside stored answers, whose
    emails the state shares (``agent.state``); alone, a file's emails are nearly all
    distinct, and sharing them would cost a table entry each.

    Rows without an id or repeating one are rejected (``missing_id``,
    ``duplicate_id``, or a record fault). Rows not used are in ``excluded.dropped``:
    the rejected ones, contacts of an account in ``excluded.accounts``
    (``account_rejected``, kept in ``excluded.contacts``), of no known account
    (``unknown_account``), and contacts without an email (``missing_email``: they are
    kept, for their tier, but count in no figure).
    """
    rows = _Rows(path.name, rejected, excluded)
    left_out = {a.id for a in rows.excluded.accounts}
    contacts: list[Contact] = []
    required, known = CONTACT_COLUMNS
    records = CsvRows(path, required=required, known=(*required, *known))
    columns: list[int] | None = None
    values = written or {}
    shared = shared_text
    for position, row, _raw, fault, fault_value in records:
        if fault is not None:
            rows.reject(position, fault, fault_value)
            continue
        if columns is None:  # the header is read: where each field is (-1: no such column)
            columns = [records.index.get(name, -1) for name in (*required, *known)]
        row.append("")  # what a column the file does not have reads (index -1)
        i_id, i_account, i_email, i_name, i_title, i_tier = columns
        contact_id = rows.new_id_text(position, row[i_id])
        if contact_id is None:
            continue
        # The account id, title and tier repeat across contacts: one shared copy of each,
        # as the stored mirror loads them (and of the email, see the docstring).
        account_id = shared(row[i_account].strip(" \t"))
        address = row[i_email].strip(" \t")
        email = (shared(address) if share_emails else address) or None
        contact = _new_contact(Contact)  # Contact(...), each slot set directly
        _set_contact_id(contact, contact_id)
        _set_contact_account(contact, account_id)
        _set_contact_email(contact, email)
        _set_contact_name(contact, row[i_name].strip(" \t"))
        _set_contact_title(contact, shared(row[i_title].strip(" \t")))
        _set_contact_tier(contact, shared(row[i_tier].strip(" \t")) or None)
        _set_contact_values(contact, values.get(contact_id) or NO_VALUES)
        if account_id not in account_ids:
            if account_id in left_out:
                rows.drop(position, ACCOUNT_REJECTED)
                rows.excluded.contacts.append(contact)
            else:
                rows.drop(position, UNKNOWN_ACCOUNT)
            continue
        if email is None:
            rows.drop(position, MISSING_EMAIL)
        contacts.append(contact)
    rows.done()
    return contacts


def read_responses(
    folder: Path, as_of: datetime, *, required: bool = True
) -> tuple[list[Response], list[Rejected]]:
    """Accepted and rejected responses of ``responses.csv`` then ``responses.jsonl``.

    With ``required`` (the default) a folder holding neither file is an error.
    """
    responses, rejected, _ = read_responses_with_csv(folder, as_of, required=required)
    return responses, rejected


def read_responses_with_csv(
    folder: Path, as_of: datetime, *, required: bool = True
) -> tuple[list[Response], list[Rejected], ResponseReader | None]:
    """``read_responses``, with the reader of ``responses.csv`` (None: no such file): how
    many records it read and which ids it saw, so that a later read can take only the
    records appended since (``read_appended_responses``)."""
    csv_path, jsonl_path = folder / RESPONSES_CSV, folder / RESPONSES_JSONL
    if required and not csv_path.is_file() and not jsonl_path.is_file():
        if not folder.is_dir():
            raise CrmFileNotFoundError(f"CRM folder not found: {folder}")
        raise CrmFileNotFoundError(
            f"CRM folder {folder} has neither {RESPONSES_CSV} nor {RESPONSES_JSONL}"
        )
    responses: list[Response] = []
    rejected: list[Rejected] = []
    csv_reader: ResponseReader | None = None
    for path, read in ((csv_path, _read_csv_responses), (jsonl_path, _read_jsonl_responses)):
        if path.is_file():
            reader = read(path, as_of)
            if reader.rejected:
                log.warning("crm_file.rows_rejected", file=path.name, rejected=len(reader.rejected))
            responses.extend(reader.responses)
            rejected.extend(reader.rejected)
            if path is csv_path:
                csv_reader = reader
    return responses, rejected, csv_reader


def read_appended_responses(
    path: Path, as_of: datetime, offset: int, records: int
) -> ResponseReader:
    """The records of a responses CSV file from byte ``offset`` on, numbered after the
    ``records`` before it (the header is read from the top), by the same rules.

    Records repeating an id of the part before are not compared with it here: the
    caller makes sure there are none (else it reads the whole file)."""
    reader = _read_csv_responses(path, as_of, resume=(offset, records))
    if reader.rejected:
        log.warning("crm_file.rows_rejected", file=path.name, rejected=len(reader.rejected))
    return reader


def read_response_file(path: Path, as_of: datetime) -> tuple[list[Response], list[Rejected]]:
    """One survey file (``.csv``, or ``.jsonl`` / ``.json`` lines), its ``source`` the file name.

    The same rules as the CRM folder's responses file; ``CrmFormatError`` when the
    file cannot be read at all.
    """
    jsonl = path.suffix.lower() in {".jsonl", ".json", ".ndjson"}
    reader = _read_jsonl_responses(path, as_of) if jsonl else _read_csv_responses(path, as_of)
    return reader.responses, reader.rejected


def _read_csv_responses(
    path: Path, as_of: datetime, resume: tuple[int, int] | None = None
) -> ResponseReader:
    reader = ResponseReader(path.name, as_of)
    required, known = RESPONSE_COLUMNS
    rows = CsvRows(path, required=required, known=(*required, *known), resume=resume)
    if resume is not None:
        reader.position = resume[1]
    reader.feed_csv(rows)
    return reader


def _read_jsonl_responses(path: Path, as_of: datetime) -> ResponseReader:
    """One JSON object per line; a line that is not an object (or nests too deep, or
    holds text that is not Unicode) is ``invalid_record``."""
    reader = ResponseReader(path.name, as_of, json_mode=True)
    with path.open(encoding="utf-8-sig", newline="") as handle:
        try:
            for line in handle:
                text = without_terminator(line)
                if text.strip():
                    reader.feed(json_record(text), raw=text)
        except UnicodeDecodeError as exc:
            raise CrmFormatError(f"{path.name} is not UTF-8 text: {exc.reason}") from exc
    return reader


def read_written(path: Path) -> dict[str, dict[str, str]]:
    """The agent's write-back file (``ax_accounts.csv`` …): id → column → raw text.

    A missing file is an empty mapping (nothing written yet); a later row for the
    same id replaces an earlier one; rows without an id are skipped. Column names
    keep their case: they are the configured field names the planner looks up.
    """
    rows = WrittenRows(path)
    written: dict[str, dict[str, str]] = {}
    try:
        for record_id, values in rows:
            # the written figures repeat across records: one shared copy of each
            written[record_id] = dict(zip(rows.columns, map(shared_text, values), strict=True))
    finally:
        rows.log_skipped()
    return written


class WrittenRows:
    """The rows of a write-back file one at a time, as ``(id, values)``: the id trimmed,
    the values in ``columns`` order (every named column but ``id``). Rows without an id
    are left out, as ``read_written`` leaves them; a missing file has no rows.

    This lets a write merge its batch into the file as it reads it instead of holding
    the whole file as a mapping (half a million contacts at the largest portfolios).
    Records that cannot be read are kept in ``skipped`` (position, reason) rather than
    logged at once: a reader that gives up half-way and reads the file again another
    way logs them from that read only, once. ``log_skipped`` logs them.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        #: The file's column names but ``id``, in header order, once a record is read.
        self.columns: list[str] = []
        self.skipped: list[tuple[int, str]] = []

    def __iter__(self) -> Iterator[tuple[str, list[str]]]:
        if not self.path.is_file():
            return
        records = CsvRows(self.path, required=("id",), fold_case=False)
        places: list[int] | None = None
        at_id = 0
        for position, row, _raw, fault, _value in records:
            if fault is not None:
                self.skipped.append((position, fault))
                continue
            if places is None:  # the header is read: where each column is
                at_id = records.index["id"]
                self.columns = [name for name in records.index if name != "id"]
                places = [records.index[name] for name in self.columns]
            record_id = row[at_id].strip(" \t")
            if record_id:
                yield record_id, [row[i] for i in places]

    def log_skipped(self) -> None:
        """One warning per record that could not be read, with its place and reason."""
        for position, reason in self.skipped:
            log.warning(
                "crm_file.written_row_skipped",
                file=self.path.name,
                position=position,
                reason=reason,
            )


def read_crm_folder(folder: Path, as_of: datetime) -> CrmFolder:
    """Accounts, contacts (with what the agent last wrote) and responses of a CRM folder."""
    if not folder.is_dir():
        raise CrmFileNotFoundError(f"CRM folder not found: {folder}")
    rejected: list[Rejected] = []
    excluded = Excluded()
    accounts = read_accounts(
        folder / ACCOUNTS_FILE,
        rejected=rejected,
        written=read_written(folder / WRITTEN_ACCOUNTS_FILE),
        excluded=excluded,
    )
    contacts = read_contacts(
        folder / CONTACTS_FILE,
        {a.id for a in accounts},
        rejected=rejected,
        written=read_written(folder / WRITTEN_CONTACTS_FILE),
        excluded=excluded,
    )
    responses, response_rejected = read_responses(folder, as_of)
    return CrmFolder(accounts, contacts, responses, [*rejected, *response_rejected], excluded)
