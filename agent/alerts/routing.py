"""Where an alert goes: a channel, a route by account attribute, or the account owner."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from agent.alerts.model import Destination
from agent.core.routes import Route
from agent.rules.facts import AccountFacts
from agent.rules.model import Notify

__all__ = ["Routing"]


@dataclass(frozen=True, slots=True)
class Routing:
    """Channel names (as rules use them) -> Slack channel ids or ``#names``; routes."""

    channels: Mapping[str, str]
    default_channel: str
    routes: Mapping[str, Route] = field(default_factory=dict)
    mention_owner: bool = False

    def channel(self, name: str) -> str:
        """The Slack channel behind a rule's channel name (names map to themselves)."""
        return self.channels.get(name, name)

    def destination(self, notify: Notify, account: AccountFacts | None) -> Destination:
        fallback = self._fallback(notify, account)
        owner = account.entity.owner_email if account is not None else None
        if notify.owner and owner:
            return Destination(channel=fallback, owner_email=owner)
        return Destination(channel=fallback)

    def mention(self, notify: Notify, account: AccountFacts | None) -> str | None:
        """The owner's email to @-mention, when the rule or the config asks for it."""
        if account is None or not (notify.mention_owner or self.mention_owner):
            return None
        return account.entity.owner_email

    def _fallback(self, notify: Notify, account: AccountFacts | None) -> str:
        if notify.channel is not None:
            return self.channel(notify.channel)
        if notify.route is not None:
            route = self.routes[notify.route]
            value = account.entity.attributes.get(route.attribute) if account else None
            name = route.map.get(value or "") or route.default or self.default_channel
            return self.channel(name)
        return self.channel(self.default_channel)
