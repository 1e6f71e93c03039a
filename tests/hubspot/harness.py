"""A HubSpot connector against a seeded fake portal, for the connector contract suite.

``HubSpotHarness`` gives what a CRM-agnostic contract test needs: a connector, a way
to seed accounts and contacts in the CRM's own terms, to read back what the
connector wrote (typed like the planner's values), to change or delete records behind
the connector's back, and the number of update calls made.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from agent.config.settings import HubSpotSettings
from agent.core.contract import FieldSpec, ObjectKind, default_field_specs
from agent.core.models import Account, Contact
from agent.core.ports import FieldValue
from connectors.common.retry import RetryPolicy
from connectors.hubspot import HubSpotConnector, from_settings
from connectors.hubspot.mapping import OBJECT_TYPES
from connectors.hubspot.properties import expected_type
from connectors.hubspot.values import parse_value
from tests.hubspot.fakeportal import FakePortal
from tests.hubspot.fakeserve import serve_stdlib


@dataclass
class FakeTime:
    """A monotonic clock that only moves when something sleeps on it."""

    now: float = 0.0
    sleeps: list[float] = field(default_factory=list)

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def portal_clock(portal: FakePortal) -> Callable[[], datetime]:
    """The connector's wall clock, kept on the portal's (so cursors line up)."""
    return lambda: datetime.fromtimestamp(portal.now_ms / 1000, tz=UTC)


def build_connector(
    portal: FakePortal, base_url: str, time: FakeTime | None = None, **overrides: Any
) -> HubSpotConnector:
    """A connector for ``portal`` at ``base_url`` that never really sleeps."""
    time = time or FakeTime()
    hubspot = HubSpotSettings(access_token=portal.token, base_url=base_url, **overrides)
    return from_settings(
        hubspot,
        clock=portal_clock(portal),
        monotonic=time.monotonic,
        sleep=time.sleep,
        retry=RetryPolicy(attempts=4, initial=0.5, maximum=5, sleep=time.sleep),
    )


def provision_all(portal: FakePortal, specs: tuple[FieldSpec, ...] | None = None) -> None:
    """Define every mapped property, as ``ax-agent crm provision hubspot`` would."""
    for spec in specs or default_field_specs():
        hs_type, field_type = expected_type(spec.kind)
        options = ("true", "false") if spec.kind == "boolean" else spec.options
        portal.define(OBJECT_TYPES[spec.object], spec.hubspot, hs_type, field_type, options=options)


class HubSpotHarness:
    """The contract suite's handle on HubSpot."""

    name = "hubspot"

    def __init__(self, portal: FakePortal, base_url: str) -> None:
        self.portal = portal
        self.base_url = base_url
        self.specs = default_field_specs()
        provision_all(portal, self.specs)
        self.connector = build_connector(portal, base_url)

    def seed_account(self, account: Account) -> str:
        props: dict[str, str | None] = {
            "name": account.name,
            "domain": account.domains[0] if account.domains else None,
            "hs_additional_domains": ";".join(account.domains[1:]) or None,
            "annualrevenue": str(account.revenue),
            "hubspot_owner_id": self.owner(account.owner_email) if account.owner_email else None,
        }
        return self.portal.add_company(account.id or None, **props)

    def owner(self, email: str) -> str:
        """The id of the portal's owner with ``email``, added when there is none yet."""
        for owner_id, owner in self.portal.owners.items():
            if owner["email"] == email:
                return owner_id
        owner_id = str(9000 + len(self.portal.owners))
        self.portal.add_owner(owner_id, email)
        return owner_id

    def seed_contact(self, contact: Contact) -> str:
        first, _, last = contact.name.partition(" ")
        return self.portal.add_contact(
            contact.id or None,
            company=contact.account_id or None,
            email=contact.email,
            firstname=first or None,
            lastname=last or None,
            jobtitle=contact.title or None,
        )

    def read_back(self, obj: ObjectKind, record_id: str) -> dict[str, FieldValue]:
        """The agent's fields as HubSpot holds them now, keyed by HubSpot name."""
        object_type = OBJECT_TYPES[obj]
        return {
            s.hubspot: parse_value(self.portal.value(object_type, record_id, s.hubspot), s.kind)
            for s in self.specs
            if s.object == obj
        }

    def advance(self, seconds: float) -> None:
        """Let time pass in the CRM (beyond an incremental read's overlap, for instance)."""
        self.portal.tick(int(seconds * 1000))

    def delete(self, obj: ObjectKind, record_id: str) -> None:
        self.portal.archive(OBJECT_TYPES[obj], record_id)

    def rename(self, obj: ObjectKind, record_id: str, name: str) -> None:
        key = "name" if obj == "account" else "firstname"
        self.portal.modify(OBJECT_TYPES[obj], record_id, **{key: name})

    @property
    def update_calls(self) -> int:
        return len(self.portal.calls("POST", r"/crm/v3/objects/\w+/batch/update"))


@contextmanager
def open_harness() -> Iterator[HubSpotHarness]:
    """A harness on its own loopback server, for suites outside ``tests/hubspot``.

    Fails on exit when a request broke HubSpot's documented contract.
    """
    portal = FakePortal()
    server, url = serve_stdlib(portal)
    try:
        yield HubSpotHarness(portal, url)
    finally:
        server.shutdown()
        server.server_close()
    assert portal.violations == [], portal.violations
