"""Slack's own settings: the ``slack:`` block of the agent's configuration.

Plain pydantic models with no SDK import. ``channels`` and ``routes`` are the names
rule files may use; the rules loader checks its rules against them.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from agent.core.routes import Route

__all__ = ["SlackSettings"]


class _Block(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _shipped_channels() -> dict[str, str]:
    """The channel names the shipped rules use, each posting to the Slack channel of that name."""
    names = ("cx-alerts", "cx-leadership", "account-management", "cx-admin")
    return {n: f"#{n}" for n in names}


class SlackSettings(_Block):
    """Slack delivery of alerts, and the channels and routes rule files may name.

    ``channels`` maps the names rules use to Slack channel ids (``C0123ABC``) or
    ``#names``; ids save a lookup. ``routes`` pick a channel name by an account
    attribute. ``default_channel`` and ``admin_channel`` are names from ``channels``.
    """

    bot_token: SecretStr | None = None
    signing_secret: SecretStr | None = None
    base_url: str = "https://slack.com/api/"
    default_channel: str = "cx-alerts"
    admin_channel: str = "cx-admin"
    channels: dict[str, str] = Field(default_factory=_shipped_channels)
    routes: dict[str, Route] = Field(default_factory=dict)
    #: More alerts than this for one channel in one cycle are sent as one digest.
    digest_threshold: int = Field(default=10, ge=0)
    #: @-mention the account owner on every account alert (rules can ask per rule).
    mention_owner: bool = False
    #: Link to a CRM record; ``{id}`` is replaced by the account id.
    crm_url_template: str | None = None
    #: A contact CRM field holding when a detractor's loop was closed (ISO 8601).
    loop_closed_field: str | None = None
    #: Retries of slack_sdk's own handlers (rate limits, 5xx, dropped connections).
    max_retries: int = Field(default=3, ge=0, le=10)
    #: chat.postMessage pace per channel (Slack allows about one per second, short bursts).
    post_per_second: float = Field(default=1.0, gt=0, le=100)
    #: Requests per minute for other Web API methods, over Slack's tiers (e.g. a grant).
    method_limits: dict[str, int] = Field(default_factory=dict)
    timeout_seconds: int = Field(default=30, gt=0)

    @model_validator(mode="after")
    def _known_names(self) -> SlackSettings:
        known = set(self.channels)
        problems = [
            f"{key} '{name}' is not in slack.channels"
            for key, name in (
                ("default_channel", self.default_channel),
                ("admin_channel", self.admin_channel),
            )
            if name not in known
        ]
        for route_name, route in self.routes.items():
            for target in (*route.map.values(), *([route.default] if route.default else [])):
                if target not in known:
                    problems.append(
                        f"routes.{route_name}: channel '{target}' is not in slack.channels"
                    )
        if problems:
            raise ValueError("; ".join(problems))
        return self
