"""The CRM mirror: accounts and contacts as last read, so incremental reads add up.

Each record is one row keyed by (crm, object, record_id) with its fields as a JSON
payload. A full read replaces the mirror: every record it did not return is marked
deleted. That is done by stamping the read's rows with one ``seen_at`` instant and
then marking every live row with another stamp, so it needs no giant ``NOT IN``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, TypeVar

from sqlalchemy import Text, cast, func, select, update

from agent.core.batching import chunked
from agent.core.contract import ObjectKind
from agent.core.models import Account, Contact
from agent.state import schema
from agent.state.codec import (
    account_from_payload,
    account_payload,
    contact_from_payload,
    contact_payload,
    crm_values_from_payload,
    written_stamp,
)
from agent.state.dialect import bulk_write, plain_rows
from agent.state.jsontext import dumps, loads
from agent.state.ops_base import BATCH_ROWS, OpsBase

__all__ = ["Echo", "MirrorOps", "replacing_stream"]

_OBJECTS: dict[str, type] = {"account": Account, "contact": Contact}
#: What a changed record's row takes on a key conflict.
_CHANGED = ["payload", "deleted", "seen_at", "changed_at"]
#: The payload key of a record's values in the agent's own fields.
_VALUES = "crm_values"

#: Whether a value read from one of the agent's fields (by the CRM's field name) is the
#: same as another value of that field, as the write-back compares them: ``Echo(name,
#: read, other)``, the other being what the agent last wrote there (as
#: ``written_values`` holds it) or what the mirror held. The sync layer gives one per
#: object; a field it does not know is never the same.
Echo = Callable[[str, object, Any], bool]
#: A record's ``crm_values`` as read (the methods' ``object`` argument hides the builtin).
_Values = Mapping[str, object]
#: What the agent last wrote to a record, per field, and the fields it wrote after the
#: record's last read.
_Written = tuple[dict[str, Any], set[str]]
_NOTHING_WRITTEN: _Written = ({}, set())


def replacing_stream(object: ObjectKind) -> str:
    """The cursor stream that marks a full read of ``object`` under way: set in a
    transaction of its own before the read's first piece, cleared with its deletions
    (``StateStore.replace_all``). Until then the mirror holds some records as read now
    and others as read before, so ``StateStore.load_mirror`` waits."""
    return f"{object}:replacing"


class MirrorOps(OpsBase):
    """Accounts and contacts per CRM."""

    def replacing(self, crm: str) -> dict[str, str]:
        """The objects of ``crm`` whose full read is under way, each with its start (as
        stored: ISO 8601 in UTC)."""
        c = schema.cursors.c
        kinds: tuple[ObjectKind, ...] = ("account", "contact")
        streams = {replacing_stream(kind): str(kind) for kind in kinds}
        stmt = select(c.stream, c.value).where(c.source == crm, c.stream.in_(streams))
        return {streams[str(row.stream)]: str(row.value) for row in self._conn.execute(stmt)}

    def upsert_records(
        self,
        crm: str,
        object: ObjectKind,
        records: Sequence[Account | Contact],
        *,
        own_values: bool = False,
        echo: Echo | None = None,
        on_changed: Callable[[list[str]], None] | None = None,
        on_echoed: Callable[[list[str]], None] | None = None,
    ) -> int:
        """Store new or changed records (live again if they were deleted); returns how
        many were new, changed or live again (``stamp_records``)."""
        return self.stamp_records(
            crm,
            object,
            records,
            self._now(),
            own_values=own_values,
            echo=echo,
            on_changed=on_changed,
            on_echoed=on_echoed,
        )

    def mark_deleted(self, crm: str, object: ObjectKind, ids: Iterable[str]) -> int:
        """Mark records deleted in the CRM; returns how many live records that changed."""
        c = schema.crm_records.c
        changed = 0
        now = self._now()
        for batch in chunked(ids, BATCH_ROWS):
            stmt = (
                update(schema.crm_records)
                .where(c.crm == crm, c.object == object, c.record_id.in_(batch), ~c.deleted)
                .values(deleted=True, seen_at=now, changed_at=now)
            )
            changed += self._conn.execute(stmt).rowcount
        return changed

    def replace_all(
        self,
        crm: str,
        object: ObjectKind,
        records: Sequence[Account | Contact],
    ) -> int:
        """A full read: store ``records``, mark every other record deleted; returns deletions."""
        stamp = self._now()
        self.stamp_records(crm, object, records, stamp)
        return self.delete_unstamped(crm, object, stamp)

    def load_accounts(self, crm: str, reuse: Sequence[Account] = ()) -> list[Account]:
        """Live accounts of ``crm``, in id order (code-point order on every dialect).

        ``reuse``: accounts loaded before; each account read equal to one of them is
        that very object (``_reused``)."""
        live = (account_from_payload(rid, payload) for rid, payload in self._live(crm, "account"))
        accounts = _reused(live, reuse)
        accounts.sort(key=lambda a: a.id)
        return accounts

    def load_contacts(self, crm: str, reuse: Sequence[Contact] = ()) -> list[Contact]:
        """Live contacts of ``crm``, in id order (code-point order on every dialect);
        ``reuse`` as for ``load_accounts``."""
        live = (contact_from_payload(rid, payload) for rid, payload in self._live(crm, "contact"))
        contacts = _reused(live, reuse)
        contacts.sort(key=lambda c: c.id)
        return contacts

    def count_records(self, crm: str, object: ObjectKind) -> int:
        """How many live records of one kind the mirror holds."""
        c = schema.crm_records.c
        stmt = select(func.count()).where(c.crm == crm, c.object == object, ~c.deleted)
        return int(self._conn.execute(stmt).scalar_one())

    # -- shared with the store's batched full read ------------------------------

    def stamp_records(
        self,
        crm: str,
        object: ObjectKind,
        records: Sequence[Account | Contact],
        stamp: datetime,
        *,
        own_values: bool = False,
        echo: Echo | None = None,
        on_changed: Callable[[list[str]], None] | None = None,
        on_echoed: Callable[[list[str]], None] | None = None,
    ) -> int:
        """Upsert ``records`` with ``seen_at`` = ``stamp`` (one full read shares one stamp);
        returns how many were new, changed or live again, which also get ``changed_at``
        = ``stamp``. ``on_changed`` is told their ids before they are written (inside the
        transaction, so before anyone else can read them).

        A record the mirror holds live with the same fields only gets the stamp: a file
        CRM reads a whole file again for one changed row, and 50,000 unchanged records
        were written anew and counted as changed.

        ``own_values``: the CRM says the records' ``crm_values`` differ from the ones last
        read only by the agent's own confirmed writes (``Batch.own_values``). A record
        that differs only there is stored with them but is no change: not counted, and
        its ``changed_at`` stays. Without that word, ``echo`` decides the same per record:
        a record that differs only in ``crm_values``, each differing field holding the
        value the agent last wrote there (``written_values``), is the agent's own write
        read back (a Salesforce or HubSpot read after a write-back returns every record
        written, its modstamp moved). ``on_echoed`` is told those records' ids: their
        values are stored (and no longer overlaid by the confirmed writes), so a
        process holding the records reads them again. A record read exactly as held,
        though the agent wrote to it since it was last read, is a change: the CRM does
        not hold what was written.

        Claimed against the running agent's leadership epoch, as the cursor commit is: a
        full read commits its records piece by piece before its cursor, and a superseded
        leader's piece (an older read of the CRM) commits nothing.
        """
        self._hold(f"the records of {crm}/{object} read")
        kind = _check_kind(object)
        rows: dict[str, dict[str, Any]] = {}
        read: dict[str, _Values] = {}
        for record in records:  # a repeated id within one call: the last one wins
            rows[record.id] = _row(crm, object, kind, record, stamp)
            read[record.id] = record.crm_values
        c = schema.crm_records.c
        changed = 0
        for batch in chunked(rows.values(), BATCH_ROWS):
            moved, echoed, same = self._sort_read(
                crm, object, batch, read, own_values=own_values, echo=echo
            )
            if moved:
                if on_changed is not None:
                    on_changed([row["record_id"] for row in moved])
                bulk_write(self._conn, schema.crm_records, moved, _CHANGED)
            if echoed:  # the agent's own values read back: stored, but no change
                if on_echoed is not None:
                    on_echoed([row["record_id"] for row in echoed])
                bulk_write(self._conn, schema.crm_records, echoed, ["payload", "seen_at"])
            if same:
                stmt = (
                    update(schema.crm_records)
                    .where(c.crm == crm, c.object == object, c.record_id.in_(same))
                    .values(seen_at=stamp)
                )
                self._conn.execute(stmt)
            changed += len(moved)
        return changed

    def _sort_read(
        self,
        crm: str,
        object: ObjectKind,
        batch: Sequence[dict[str, Any]],
        read: Mapping[str, _Values],
        *,
        own_values: bool,
        echo: Echo | None,
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[str]]:
        """``stamp_records``' rows of one batch as changes, the agent's own values read
        back, and the ids of the records read as held."""
        held = self._live_payloads(crm, object, [r["record_id"] for r in batch])
        moved: list[dict[str, Any]] = []
        echoed: list[dict[str, Any]] = []
        same: list[str] = []
        #: rows that differ from the held ones in ``crm_values`` only, with the held ones
        maybe: list[tuple[dict[str, Any], dict[str, Any]]] = []
        for row in batch:
            text = held.get(row["record_id"])
            if text is not None and text == dumps(row["payload"]):
                same.append(row["record_id"])
            elif (
                (own_values or echo is not None)
                and text is not None
                and (values := _values_apart(text, row["payload"])) is not None
            ):
                if own_values:
                    echoed.append(row)
                else:
                    maybe.append((row, values))
            else:
                moved.append(row)
        if maybe and echo is not None:
            wrote = self._written_fields(crm, object, [row["record_id"] for row, _ in maybe])
            for row, values in maybe:
                rid = row["record_id"]
                new = (row["payload"][_VALUES], read[rid])
                mine = _echoes(values, new, wrote.get(rid, _NOTHING_WRITTEN), echo)
                (echoed if mine else moved).append(row)
        if same:
            # read as held, but the agent wrote since it was read: the CRM does not
            # hold what the agent wrote (a reverted value, a restored file): a change
            lost = self._written_since_read(crm, object, same)
            if lost:
                moved.extend(r for r in batch if r["record_id"] in lost)
                same = [rid for rid in same if rid not in lost]
        return moved, echoed, same

    def _live_payloads(self, crm: str, object: ObjectKind, ids: Sequence[str]) -> dict[str, str]:
        """The stored JSON text of the live records among ``ids``: a record is unchanged
        when its payload serialises to that very text (any other text, e.g. from another
        serialiser, only rewrites it)."""
        c = schema.crm_records.c
        stmt = select(c.record_id, cast(c.payload, Text)).where(
            c.crm == crm, c.object == object, c.record_id.in_(ids), ~c.deleted
        )
        return dict(plain_rows(self._conn, stmt))

    def _written_fields(
        self, crm: str, object: ObjectKind, ids: Sequence[str]
    ) -> dict[str, _Written]:
        """Per record among ``ids``: the value the agent last wrote to each field, and
        the fields it wrote after the record's last read."""
        w, r = schema.written_values.c, schema.crm_records.c
        stmt = (
            select(w.record_id, w.fields, r.seen_at)
            .select_from(schema.written_with_records())
            .where(w.crm == crm, w.object == object, w.record_id.in_(ids))
        )
        found: dict[str, _Written] = {}
        stamps: dict[datetime, str] = {}  # a full read stamps its records with one instant
        for rid, fields, seen_at in plain_rows(self._conn, stmt):
            read = stamps.get(seen_at)
            if read is None:
                read = stamps[seen_at] = written_stamp(seen_at)
            values = {name: pair[0] for name, pair in fields.items()}
            found[rid] = (values, {name for name, (_v, at) in fields.items() if at > read})
        return found

    def _written_since_read(self, crm: str, object: ObjectKind, ids: Sequence[str]) -> set[str]:
        """The records among ``ids`` with a value the agent wrote after their last read
        (the confirmed writes that stand in for the CRM's values)."""
        r, w = schema.crm_records.c, schema.written_values.c
        stmt = (
            select(w.record_id)
            .select_from(schema.written_with_records())
            .where(w.crm == crm, w.object == object, w.record_id.in_(ids))
            .where(w.written_at > r.seen_at)
        )
        return set(self._conn.execute(stmt).scalars())

    def delete_unstamped(self, crm: str, object: ObjectKind, stamp: datetime) -> int:
        """Mark deleted every live record not stamped ``stamp`` by the current full read."""
        c = schema.crm_records.c
        now = self._now()
        stmt = (
            update(schema.crm_records)
            .where(c.crm == crm, c.object == object, ~c.deleted, c.seen_at != stamp)
            .values(deleted=True, seen_at=now, changed_at=now)
        )
        return int(self._conn.execute(stmt).rowcount)

    def _live(self, crm: str, object: ObjectKind) -> Iterator[tuple[str, Any]]:
        """Live rows one at a time (each payload is turned into a record and dropped, so
        500,000 decoded payloads are never held at once); the caller sorts by id."""
        c = schema.crm_records.c
        stmt = select(c.record_id, c.payload).where(c.crm == crm, c.object == object, ~c.deleted)
        yield from plain_rows(self._conn, stmt)


def _check_kind(object: str) -> Literal["account", "contact"]:
    if object not in _OBJECTS:
        raise ValueError(f"CRM object must be account or contact, not {object!r}")
    return "account" if object == "account" else "contact"


def _row(
    crm: str, object: str, kind: str, record: Account | Contact, stamp: datetime
) -> dict[str, Any]:
    if not isinstance(record, _OBJECTS[kind]):
        raise TypeError(f"a {type(record).__name__} cannot be stored as a CRM {object}")
    payload = account_payload(record) if isinstance(record, Account) else contact_payload(record)
    return {
        "crm": crm,
        "object": object,
        "record_id": record.id,
        "payload": payload,
        "deleted": False,
        "seen_at": stamp,
        "changed_at": stamp,
    }


def _values_apart(held: str, payload: Mapping[str, Any]) -> dict[str, Any] | None:
    """The stored ``crm_values`` when the stored payload text ``held`` and ``payload``
    differ in ``crm_values`` only, else None."""
    stored = loads(held)
    if not isinstance(stored, dict):
        return None
    values = stored.pop(_VALUES, None)
    if dumps(stored) != dumps({k: v for k, v in payload.items() if k != _VALUES}):
        return None
    return values if isinstance(values, dict) else {}


def _echoes(
    held: Mapping[str, Any],
    new: tuple[Mapping[str, Any], _Values],
    wrote: _Written,
    echo: Echo,
) -> bool:
    """Whether every field whose stored value (``held``, as stored) differs from the one
    read (``new``: as stored, and as the CRM gave it) holds what the agent last wrote to
    it (``wrote``), or, for a field the agent never wrote, the same value as before in
    another form (an empty text where the mirror held none); and whether every field
    the agent wrote after the record's last read holds that value (one read as held
    there was reverted, or never took the write: the record is a change, as a record
    read wholly as held is)."""
    stored, read = new
    written, since_read = wrote
    if any(not echo(name, read.get(name), written[name]) for name in since_read):
        return False
    before: _Values | None = None
    for name in held.keys() | stored.keys():
        if name in held and name in stored and held[name] == stored[name]:
            continue
        if name in written:
            other = written[name]
        else:
            if before is None:
                before = crm_values_from_payload(held)
            other = before.get(name)
        if not echo(name, read.get(name), other):
            return False
    return True


_Record = TypeVar("_Record", Account, Contact)


def _reused(records: Iterable[_Record], previous: Sequence[_Record]) -> list[_Record]:
    """``records`` as a list, each one equal to the record of its id in ``previous``
    replaced by that record, as it is read.

    A process that holds the mirror's records and reads them again after a change
    (the running agent, for a revenue changed in 1 % of the accounts) otherwise holds
    every record twice until the old ones go: about 250 MB at 550,000 records, at the
    peak of the computation that follows. The records are frozen, so an equal one
    serves as well; only the changed records are new objects."""
    if not previous:
        return list(records)
    by_id = {record.id: record for record in previous}
    out: list[_Record] = []
    keep = out.append
    for record in records:
        old = by_id.get(record.id)
        keep(old if old is not None and old == record else record)
    return out
