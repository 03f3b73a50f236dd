"""Push documents with the orchestrator's appliance client, from inside a test namespace:
``python -m tests.functional.appliance.push STEPS.json ADDRESS PORT``.

STEPS is a JSON list of ``[client, document]``: each document is put by client number
``client`` (one :class:`HttpApplianceClient` each, so a second client is an orchestrator or
operator that changed the appliance behind the first one's back).
"""

from __future__ import annotations

import json
import sys

from astara.orchestrator.appliance_client import HttpApplianceClient


def main() -> None:
    steps = json.loads(open(sys.argv[1]).read())  # noqa: SIM115 - read once, closed at exit
    address, port = sys.argv[2], int(sys.argv[3])
    clients: dict[int, HttpApplianceClient] = {}
    for number, document in steps:
        client = clients.setdefault(number, HttpApplianceClient(tls=None))
        client.put_config(address, port, document)
    for client in clients.values():
        client.close()


if __name__ == "__main__":
    main()
