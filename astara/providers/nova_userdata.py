"""The cloud-init user data an appliance server boots with.

It configures the management interface before anything else (``bootcmd`` runs early on every
boot) by running ``astara-configure-management --state-dir <dir> <mac> <ip/prefix>``, and
creates the ``astara`` operator account with the operator's ssh key (DESIGN, seed install
guide). The document is JSON, which is valid YAML, so it needs no YAML library to write.

With mutual TLS the same command carries ``--tls-bundle <base64 JSON>``: the appliance's own
server certificate, its key and the orchestrator's CA (about 2.5 KB, well inside Nova's 64 KiB),
which it writes to ``<state dir>/tls/`` (0600) before the image's init starts the API with
them. The user data is readable only by the server itself and the service project's admins.
"""

from __future__ import annotations

import base64
import json
from typing import Any

CONFIGURE_COMMAND = "astara-configure-management"
OPERATOR_USER = "astara"
MAX_USER_DATA = 65535  # Nova's limit on base64-encoded user data


def cloud_config(
    management_mac: str,
    management_cidr: str,
    *,
    state_dir: str = "/var/lib/astara",
    ssh_public_key: str | None = None,
    hostname: str | None = None,
    tls_bundle: str | None = None,
) -> str:
    """The ``#cloud-config`` document for one appliance."""
    configure = [CONFIGURE_COMMAND, "--state-dir", state_dir]
    if tls_bundle:
        configure += ["--tls-bundle", tls_bundle]
    doc: dict[str, Any] = {
        "bootcmd": [[*configure, management_mac, management_cidr]],
        "final_message": "Astara appliance is up after $UPTIME seconds",
    }
    if hostname:
        doc["hostname"] = hostname
    if ssh_public_key:
        doc["users"] = [
            {
                "name": OPERATOR_USER,
                "gecos": "Astara operator",
                "shell": "/bin/bash",
                "sudo": "ALL=(ALL) NOPASSWD:ALL",
                "lock_passwd": True,
                "ssh_authorized_keys": [ssh_public_key.strip()],
            }
        ]
    return "#cloud-config\n" + json.dumps(doc, indent=1) + "\n"


def encode(user_data: str) -> str:
    """Base64 for Nova's ``user_data``; ValueError if Nova would refuse its size."""
    encoded = base64.b64encode(user_data.encode()).decode()
    if len(encoded) > MAX_USER_DATA:
        raise ValueError(f"user data is {len(encoded)} bytes encoded; Nova takes {MAX_USER_DATA}")
    return encoded
