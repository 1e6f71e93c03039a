"""Owner ids to e-mail addresses through the owners API, cached.

Companies name their owner by ``hubspot_owner_id``. The directory pages through
``GET /crm/v3/owners`` once (100 a call) and keeps the map; an id it does not know
(an owner deactivated since) triggers one read of the archived owners, at most once
per ``refresh``.
"""

from __future__ import annotations

from connectors.common.paging import paginate
from connectors.hubspot.client import HubSpotApis
from connectors.hubspot.records import next_after, results
from connectors.hubspot.transport import Transport

__all__ = ["OwnerDirectory"]


class OwnerDirectory:
    """Owner id -> e-mail, loaded lazily and cached for the connector's life."""

    def __init__(self, transport: Transport, apis: HubSpotApis, page_size: int = 100) -> None:
        self._transport = transport
        self._apis = apis
        self._page_size = page_size
        self._emails: dict[str, str | None] | None = None
        self._active: dict[str, str] | None = None
        self._archived_loaded = False

    def refresh(self) -> None:
        """Allow one more look at archived owners for ids not known yet (once per read)."""
        self._archived_loaded = False

    def email(self, owner_id: str | None) -> str | None:
        """The owner's e-mail, or None when there is no owner or HubSpot does not know it."""
        if not owner_id:
            return None
        if self._emails is None:
            self._emails = self._load(archived=False)
        if owner_id not in self._emails and not self._archived_loaded:
            self.ids_by_email()  # fix the active owners before archived ones join the map
            self._archived_loaded = True
            for key, value in self._load(archived=True).items():
                self._emails.setdefault(key, value)
        return self._emails.get(owner_id)

    def ids_by_email(self) -> dict[str, str]:
        """Active owners' ids by lower-cased e-mail (archived owners are deactivated users)."""
        if self._emails is None:
            self._emails = self._load(archived=False)
        if self._active is None:
            self._active = {e.lower(): i for i, e in self._emails.items() if e}
        return self._active

    def _load(self, *, archived: bool) -> dict[str, str | None]:
        emails: dict[str, str | None] = {}
        kind = "owners.list" + (".archived" if archived else "")

        def fetch(after: str | None) -> tuple[list[tuple[str, str | None]], str | None]:
            response = self._transport.call(
                kind,
                self._apis.owners.get_page,
                limit=self._page_size,
                after=after,
                archived="true" if archived else None,
            )
            rows = [
                (str(o["id"]), (o.get("email") or "").strip() or None) for o in results(response)
            ]
            return rows, next_after(response)

        for page in paginate(fetch):
            emails.update(page)
        return emails
