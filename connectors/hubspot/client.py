"""Set-up of hubspot-api-client: one configured API object per endpoint group.

The client's discovery properties build a new API client (and connection pool) on
every access, so the ones this connector needs are built once here. The client's own
urllib3 ``Retry`` is switched off: urllib3 skips POST by default (every batch and
search call is a POST), and the shared tenacity policy is the one retry layer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hubspot import HubSpot
from urllib3.util.retry import Retry

__all__ = ["HubSpotApis", "build_apis"]


@dataclass(frozen=True, slots=True)
class HubSpotApis:
    """The generated API objects the connector calls (typed loosely: the SDK is untyped)."""

    objects_basic: Any
    objects_batch: Any
    objects_search: Any
    associations_batch: Any
    properties_core: Any
    properties_groups: Any
    properties_batch: Any
    owners: Any


def build_apis(base_url: str, access_token: str) -> HubSpotApis:
    """API objects talking to ``base_url`` with ``access_token``, without client-side retries."""
    client = HubSpot(
        access_token=access_token,
        retry=Retry(total=False),
        host=base_url.rstrip("/"),
    )
    crm = client.crm
    return HubSpotApis(
        objects_basic=crm.objects.basic_api,
        objects_batch=crm.objects.batch_api,
        objects_search=crm.objects.search_api,
        associations_batch=crm.associations.v4.batch_api,
        properties_core=crm.properties.core_api,
        properties_groups=crm.properties.groups_api,
        properties_batch=crm.properties.batch_api,
        owners=crm.owners.owners_api,
    )
