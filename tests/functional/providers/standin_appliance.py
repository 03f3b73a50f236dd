"""A stand-in for the appliance programs, used until the real ones can be run in tests.

``configure MAC CIDR``: like ``astara-configure-management``: find the NIC by MAC, name it
``ge0``, give it the address (nodad), record it in ``--state-dir``, exit 0.
``api``: like ``astara-appliance-api``: serve ``GET /v1/status/`` on the recorded address.
It binds to an address, never to a name (no resolver inside a namespace).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import socket
import socketserver
import subprocess
import sys
from pathlib import Path


def configure(state_dir: Path, mac: str, cidr: str) -> int:
    links = json.loads(subprocess.check_output(["ip", "-json", "link", "show"]))
    nic = next((link["ifname"] for link in links if link.get("address") == mac.lower()), None)
    if nic is None:
        print(f"no NIC with MAC {mac}", file=sys.stderr)
        return 2
    subprocess.check_call(["ip", "link", "set", nic, "down"])
    subprocess.check_call(["ip", "link", "set", nic, "name", "ge0"])
    subprocess.check_call(["ip", "link", "set", "ge0", "up"])
    subprocess.check_call(["ip", "addr", "add", cidr, "dev", "ge0", "nodad"])
    state_dir.mkdir(parents=True, exist_ok=True)
    (state_dir / "management.json").write_text(json.dumps({"ifname": "ge0", "cidr": cidr}))
    return 0


class _Status(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        request = self.rfile.readline().decode(errors="replace")
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass
        if request.startswith("GET /v1/status/ "):
            body, status = json.dumps({"pid": os.getpid(), "standin": True}).encode(), "200 OK"
        else:
            body, status = b'{"error": "not found"}', "404 Not Found"
        self.wfile.write(
            f"HTTP/1.1 {status}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True
    address_family = socket.AF_INET6


def api(state_dir: Path, port: int) -> int:
    cidr = json.loads((state_dir / "management.json").read_text())["cidr"]
    address = str(ipaddress.ip_interface(cidr).ip)
    _Server.address_family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with _Server((address, port), _Status) as server:
        server.serve_forever()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--state-dir", type=Path, required=True)
    sub = parser.add_subparsers(dest="command", required=True)
    conf = sub.add_parser("configure")
    conf.add_argument("mac")
    conf.add_argument("cidr")
    serve = sub.add_parser("api")
    serve.add_argument("--port", type=int, default=5000)
    args = parser.parse_args()
    if args.command == "configure":
        return configure(args.state_dir, args.mac, args.cidr)
    return api(args.state_dir, args.port)


if __name__ == "__main__":
    sys.exit(main())
