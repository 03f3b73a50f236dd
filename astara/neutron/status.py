"""Report a router's status to Neutron.

Stock Neutron has no writable router status, so the status goes into a router tag
``astara-status:<STATUS>`` (the new tag is added before the old one is removed, and the router's
other tags are left alone). When the astara Neutron plugin's router-status extension is loaded
(alias ``dhrouterstatus``, as the seed's astara-neutron named it; seen in GET /v2.0/extensions),
its status field is set as well: ``PUT /v2.0/dhrouterstatus/<id>``.
"""

from __future__ import annotations

import logging

from astara.neutron.client import NeutronClient

LOG = logging.getLogger(__name__)

TAG_PREFIX = "astara-status:"
STATUS_EXTENSION = "dhrouterstatus"


def status_tag(status: str) -> str:
    return f"{TAG_PREFIX}{status.upper()}"


class StatusReporter:
    def __init__(self, client: NeutronClient) -> None:
        self._client = client

    def report(self, router_id: str, status: str) -> bool:
        """Record ``status`` on the router; False if the router no longer exists."""
        router = self._client.get_router(router_id)
        if router is None:
            LOG.debug("router %s is gone: status %s not reported", router_id, status)
            return False
        tag = status_tag(status)
        if tag not in router.tags:
            self._client.add_router_tag(router_id, tag)
        for old in router.tags:
            if old.startswith(TAG_PREFIX) and old != tag:
                self._client.remove_router_tag(router_id, old)
        if STATUS_EXTENSION in self._client.extensions():
            self._client.put(
                f"/{STATUS_EXTENSION}/{router_id}", {"routerstatus": {"status": status.upper()}}
            )
        LOG.debug("router %s: status %s reported", router_id, status)
        return True
