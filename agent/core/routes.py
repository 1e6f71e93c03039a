"""A route: the channel an alert goes to, chosen by an account attribute.

Settings declare routes (``slack.routes``) and rule files name them; both layers
sit above the core, so the shape they share lives here.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Route"]


class Route(BaseModel):
    """Channels chosen by an account attribute (``region: EMEA -> cx-emea``)."""

    model_config = ConfigDict(frozen=True, extra="forbid", strict=False)

    attribute: str = Field(min_length=1)
    map: dict[str, str] = Field(min_length=1)
    default: str | None = None
