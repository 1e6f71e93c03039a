"""Write-back planning and execution: the one place that decides what the CRM gets.

``desired_values`` turns the metrics document into rounded logical values per CRM
field; ``plan_updates`` keeps only the fields whose value differs from what the CRM
holds now (compared after the same rounding), so an unchanged portfolio writes
nothing; ``execute`` sends the plan in the connector's full batches and counts.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from hashlib import blake2b
from operator import attrgetter

from agent.core.batching import chunked
from agent.core.contract import FieldSpec, ObjectKind
from agent.core.document import AccountMetrics, ContactFigures, MetricsDocument
from agent.core.models import TIERS
from agent.core.ports import CrmConnector, FieldUpdate, FieldValue, WriteOutcome
from agent.core.rounding import round_half_away

__all__ = [
    "Differ",
    "WritebackCounts",
    "crm_field",
    "desired_values",
    "execute",
    "normalise",
    "plan_updates",
    "row_id",
    "specs_digest",
]

Desired = dict[str, dict[str, FieldValue]]


def crm_field(spec: FieldSpec, crm: str) -> str:
    """The field's name in ``crm`` (``salesforce``, ``hubspot`` or ``files``)."""
    name = getattr(spec, crm, None)
    if not isinstance(name, str):
        raise ValueError(f"no field names are configured for CRM {crm!r}")
    return name


def desired_values(
    doc: MetricsDocument,
    specs: Sequence[FieldSpec],
    crm: str,
    obj: ObjectKind,
    extra: Mapping[str, Mapping[str, object]] | None = None,
) -> Desired:
    """Record id -> CRM field -> the rounded value the CRM should hold.

    ``extra`` gives figures the document does not hold, per record id and logical
    name (the figure history's ``health_trend_30d``, ``health_status_since``).
    """
    rows: Sequence[AccountMetrics | ContactFigures] = (
        doc.accounts if obj == "account" else doc.contacts
    )
    return Differ(specs, crm, obj).desired(rows, extra)


def specs_digest(specs: Sequence[FieldSpec]) -> str:
    """The field mappings as a digest: a settled write-back holds for these only."""
    return _digest(repr(tuple(specs)).encode())


def _digest(data: bytes) -> str:
    return blake2b(data, digest_size=12).hexdigest()


def row_id(row: AccountMetrics | ContactFigures) -> str:
    """The CRM record id a document row is written to."""
    return row.id if isinstance(row, AccountMetrics) else row.contact_id


def _figure(row: AccountMetrics | ContactFigures, spec: FieldSpec) -> object:
    """The figure in the CRM's scale: ratios become percent 0-100."""
    if spec.logical == "tiers_missing" and isinstance(row, AccountMetrics):
        return [t for t in TIERS if t not in row.tiers_covered]
    value = getattr(row, spec.logical)
    if spec.kind == "percent" and isinstance(value, int | float):
        return value * 100
    return value


def normalise(spec: FieldSpec, raw: object) -> FieldValue:
    """A figure, or a raw value read back from a CRM, as the comparable logical value.

    Both are in the CRM's scale (percent 0-100). Empty strings and empty selections
    read as absent; numbers are rounded half-up to the field's decimals; multi-selects
    become sorted tuples; datetimes UTC to the second (the precision every CRM keeps).
    """
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None
    kind = spec.kind
    if kind in {"number", "percent", "integer"}:
        return _number(spec, raw)
    if kind == "boolean":
        return _boolean(raw)
    if kind == "multi":
        return _multi(raw)
    if kind == "datetime":
        return _datetime(raw)
    return str(raw).strip()


def _multi(raw: object) -> tuple[str, ...] | None:
    parts = raw.split(";") if isinstance(raw, str) else [str(p) for p in _iterable(raw)]
    cleaned = tuple(sorted({p.strip() for p in parts if p.strip()}))
    return cleaned or None


def _iterable(raw: object) -> list[object]:
    return list(raw) if isinstance(raw, list | tuple | set | frozenset) else [raw]


def _number(spec: FieldSpec, raw: object) -> float | int | None:
    if isinstance(raw, bool):
        raw = int(raw)
    try:
        value = Decimal(str(raw).strip())
    except InvalidOperation:
        return None
    if not value.is_finite():
        return None
    decimals = 0 if spec.kind == "integer" else spec.decimals
    rounded = round_half_away(value, decimals)
    return int(rounded) if decimals == 0 else float(rounded)


def _boolean(raw: object) -> bool:
    if isinstance(raw, str):
        return raw.strip().lower() in {"true", "1", "yes"}
    return bool(raw)


def _datetime(raw: object) -> datetime | None:
    if isinstance(raw, datetime):
        value = raw
    else:
        text = str(raw).strip()
        if text.isdigit():  # epoch milliseconds, as some CRMs store datetimes
            value = datetime.fromtimestamp(int(text) / 1000, tz=UTC)
        else:
            try:
                value = datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).replace(microsecond=0)


def plan_updates(
    desired: Mapping[str, Mapping[str, FieldValue]],
    current: Mapping[str, Mapping[str, object]],
    specs_by_field: Mapping[str, FieldSpec],
) -> list[FieldUpdate]:
    """Only the fields whose rounded value differs from the CRM's; records in id order."""
    return _diff(desired, current, specs_by_field, _Normalised())


def _diff(
    desired: Mapping[str, Mapping[str, FieldValue]],
    current: Mapping[str, Mapping[str, object]],
    specs_by_field: Mapping[str, FieldSpec],
    same: _Normalised,
) -> list[FieldUpdate]:
    updates: list[FieldUpdate] = []
    for rid in sorted(desired):
        have = current.get(rid)
        changed: dict[str, FieldValue]
        if not have:  # the CRM holds nothing: every value is a change, but nothing for nothing
            changed = {name: value for name, value in desired[rid].items() if value is not None}
        else:
            changed = {
                name: value
                for name, value in desired[rid].items()
                if same(specs_by_field[name], have.get(name)) != value
            }
        if changed:
            updates.append(FieldUpdate(record_id=rid, values=changed))
    return updates


class Differ:
    """One object's write-back fields, planned a part of the records at a time.

    Desired values, the diff with the CRM's values and the ``before`` of each change are
    made for the records given, so a plan over the portfolio can be made (and sent) a
    chunk of records at a time; the normalised values are remembered across chunks.
    """

    def __init__(self, specs: Sequence[FieldSpec], crm: str, obj: ObjectKind) -> None:
        self.obj = obj
        self.chosen = [(crm_field(s, crm), s) for s in specs if s.object == obj]
        self.by_field = dict(self.chosen)
        self._same = _Normalised()

    def same_value(self, name: str, read: object, other: object) -> bool:
        """Whether a value read from one of these fields (by its name in the CRM) is the
        same as another (the one the agent last wrote there, the one the mirror held):
        equal once both are normalised, as the plan compares them (a stored write is
        plain JSON: an instant as ISO text, a selection as a list; an empty text is no
        value). A field the settings do not name is never the same. The mirror's
        ``Echo`` for one object."""
        spec = self.by_field.get(name)
        return spec is not None and self._same(spec, read) == self._same(spec, other)

    def desired(
        self,
        rows: Iterable[AccountMetrics | ContactFigures],
        extra: Mapping[str, Mapping[str, object]] | None = None,
    ) -> Desired:
        """``desired_values`` of ``rows`` (a repeated id: the last row wins)."""
        more_of = extra or {}
        same = self._same
        chosen = self.chosen
        out: Desired = {}
        for row in rows:
            rid = row_id(row)
            more = more_of.get(rid, {})
            out[rid] = {
                name: same(s, more[s.logical] if s.logical in more else _figure(row, s))
                for name, s in chosen
            }
        return out

    def digests(
        self,
        rows: Iterable[AccountMetrics | ContactFigures],
        extra: Mapping[str, Mapping[str, object]] | None = None,
        survey_next: Collection[str] | None = None,
    ) -> dict[str, str]:
        """Per record, a digest of what its ``desired`` values are made of: the row's
        figures the fields read, its ``extra`` values and (``survey_next``: the coverage
        plan's contacts) its flag. Equal digests mean equal desired values, in every
        process (the values are read at C speed and pickled, not normalised: a figure
        that moves without moving its rounded value only costs a comparison)."""
        more_of = extra or {}
        flagged = survey_next is not None and any(
            s.logical == "survey_next" for _n, s in self.chosen
        )
        account = self.obj == "account"
        # the figures the rows hold (the history's come with ``extra``, in the key)
        held = {f.name for f in fields(AccountMetrics if account else ContactFigures)}
        names = [
            "tiers_covered" if s.logical == "tiers_missing" else s.logical
            for _n, s in self.chosen
            if not (flagged and s.logical == "survey_next")
        ]
        names = [name for name in names if name in held]
        names.append("id" if account else "contact_id")
        figures = attrgetter(*names) if len(names) > 1 else (lambda r: (getattr(r, names[0]),))
        dumps, digest = pickle.dumps, _digest
        planned = survey_next if flagged and survey_next is not None else ()
        out: dict[str, str] = {}
        for row in rows:
            values = figures(row)
            rid = values[-1]
            more = more_of.get(rid)
            key = (values, tuple(more.items()) if more else None, rid in planned)
            out[rid] = digest(dumps(key, 5))
        return out

    def changes(
        self,
        rows: Iterable[AccountMetrics | ContactFigures],
        current: Mapping[str, Mapping[str, object]],
        extra: Mapping[str, Mapping[str, object]] | None = None,
    ) -> list[FieldUpdate]:
        """``plan_updates`` of ``desired(rows, extra)``, rows sorted by id and one per id,
        in one pass: only a changed record's values are kept."""
        more_of = extra or {}
        same = self._same
        chosen = self.chosen
        updates: list[FieldUpdate] = []
        for row in rows:
            rid = row_id(row)
            more = more_of.get(rid, {})
            have = current.get(rid)
            changed: dict[str, FieldValue] = {}
            for name, s in chosen:
                value = same(s, more[s.logical] if s.logical in more else _figure(row, s))
                if (same(s, have.get(name)) != value) if have else value is not None:
                    changed[name] = value
            if changed:
                updates.append(FieldUpdate(record_id=rid, values=changed))
        return updates

    def before(
        self, updates: Iterable[FieldUpdate], current: Mapping[str, Mapping[str, object]]
    ) -> dict[str, dict[str, FieldValue]]:
        """The CRM's value of each changed field, as ``normalise`` reads it."""
        by_field = self.by_field
        return {
            u.record_id: {
                name: normalise(by_field[name], current.get(u.record_id, {}).get(name))
                for name in u.values
            }
            for u in updates
        }


#: How many (field, raw value) answers one ``_Normalised`` keeps before starting over.
_REMEMBERED = 100_000
#: The kinds whose values are parsed and rounded: the ones worth remembering.
_PARSED = frozenset({"number", "percent", "integer", "multi"})


class _Normalised:
    """``normalise``, remembered per field and raw value for one plan.

    Across hundreds of thousands of records the same few thousand values recur (the
    CRM's text for a score, a count, a selection); each is parsed and rounded once. Only
    values whose equal keys give equal answers are remembered: text, integers,
    booleans (their type is part of the key: ``1``, ``True`` and ``1.0`` differ) and
    floats other than NaN, with zero's sign in the key (``-0.0 == 0.0``).
    """

    __slots__ = ("_seen",)

    def __init__(self) -> None:
        self._seen: dict[tuple[int, type, object], FieldValue] = {}

    def __call__(self, spec: FieldSpec, raw: object) -> FieldValue:
        if raw is None:
            return None
        if spec.kind not in _PARSED:
            return normalise(spec, raw)  # text, a flag or an instant: as quick, or unique
        kind = type(raw)
        if kind is float:
            if raw != raw:  # noqa: PLR0124  # NaN: never found again, so not kept
                return normalise(spec, raw)
            raw_key = raw or repr(raw)
        elif kind is str or kind is int or kind is bool:
            raw_key = raw
        else:
            return normalise(spec, raw)
        key = (id(spec), kind, raw_key)
        try:
            return self._seen[key]
        except KeyError:
            pass
        if len(self._seen) >= _REMEMBERED:
            self._seen.clear()
        value = self._seen[key] = normalise(spec, raw)
        return value


@dataclass(slots=True)
class WritebackCounts:
    """What one write-back did: records written, failed, and fields planned."""

    written: int = 0
    failed: int = 0
    calls: int = 0
    failures: list[WriteOutcome] = field(default_factory=list)


def execute(
    connector: CrmConnector,
    obj: ObjectKind,
    updates: Iterable[FieldUpdate],
    on_batch: Callable[[Sequence[FieldUpdate], Sequence[WriteOutcome]], None] | None = None,
) -> WritebackCounts:
    """Send ``updates`` in full batches of the connector's size; ``on_batch`` records each.

    ``on_batch`` runs after the CRM answered a batch, so the caller can durably mark
    exactly what the CRM confirmed before the next batch goes out. ``updates`` may be
    made while they are sent: the next batch is taken from it only after ``on_batch``.
    """
    counts = WritebackCounts()
    for batch in chunked(updates, connector.max_write_batch):
        outcomes = connector.write(obj, batch)
        counts.calls += 1
        for outcome in outcomes:
            if outcome.ok:
                counts.written += 1
            else:
                counts.failed += 1
                counts.failures.append(outcome)
        if on_batch is not None:
            on_batch(batch, outcomes)
    return counts
