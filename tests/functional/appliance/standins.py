"""Stand-in programs run inside test namespaces: ``python -m tests.functional.appliance.standins``.

- ``whoami ADDR PORT``: TCP; answers every connection with the peer address it sees.
- ``echo ADDR PORT``: TCP; echoes every line.
- ``metadata ADDR PORT``: HTTP; answers with the request's path and headers as JSON.
- ``flow ADDR PORT LOG``: connects once, sends a line every 100 ms and logs ``ok``/``fail``.
- ``block ADDR PORT``: holds UDP ADDR:PORT (even before the address exists) so a daemon cannot.
- ``slow ADDR PORT COUNT INTERVAL LOG``: COUNT connections, each sending one byte of a request
  every INTERVAL seconds; logs ``open N`` (connections the server has not closed) each round.

socketserver only: no name lookups (there is no resolver inside a namespace).
"""

from __future__ import annotations

import json
import socket
import socketserver
import sys
import time


class _Server(socketserver.ThreadingTCPServer):
    allow_reuse_address = True
    daemon_threads = True

    def __init__(self, addr: str, port: int, handler: type) -> None:
        self.address_family = socket.AF_INET6 if ":" in addr else socket.AF_INET
        super().__init__((addr, port), handler)


class Whoami(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.sendall(f"{self.client_address[0]}\n".encode())


class Echo(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        for line in self.rfile:
            self.wfile.write(line)
            self.wfile.flush()


class Metadata(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        request = self.rfile.readline().decode().split()
        headers = {}
        while (line := self.rfile.readline().decode().strip()) != "":
            name, _, value = line.partition(":")
            headers[name.strip()] = value.strip()
        body = json.dumps({"path": request[1], "headers": headers}).encode()
        self.wfile.write(b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n")
        self.wfile.write(f"Content-Length: {len(body)}\r\n\r\n".encode() + body)


def flow(addr: str, port: int, log: str) -> None:
    sock = socket.create_connection((addr, port), timeout=0.5)
    reader = sock.makefile("rb")
    with open(log, "a", buffering=1) as out:
        n = 0
        while True:
            n += 1
            try:
                sock.sendall(f"{n}\n".encode())
                ok = reader.readline().strip() == str(n).encode()
            except OSError:
                ok = False
            out.write(f"{'ok' if ok else 'fail'} {time.monotonic():.3f}\n")
            if not ok:
                time.sleep(0.1)
                continue
            time.sleep(0.1)


def slow(addr: str, port: int, count: int, interval: float, log: str) -> None:
    request = b"PUT /v1/system/config/ HTTP/1.1\r\nHost: x\r\nContent-Length: 99\r\n\r\n"
    family = socket.AF_INET6 if ":" in addr else socket.AF_INET
    socks = []
    for _ in range(count):
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.connect((addr, port))
        socks.append(sock)
    sent = 0
    with open(log, "a", buffering=1) as out:
        while True:
            byte = request[sent % len(request) : sent % len(request) + 1]
            sent += 1
            for sock in list(socks):
                try:
                    sock.sendall(byte)
                except OSError:
                    socks.remove(sock)
            out.write(f"open {len(socks)}\n")
            time.sleep(interval)


def main() -> None:
    mode, addr, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if mode == "block":
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        sock.setsockopt(socket.SOL_IP, 15, 1)  # IP_FREEBIND
        sock.bind((addr, port))
        while True:
            time.sleep(3600)
    if mode == "slow":
        slow(addr, port, int(sys.argv[4]), float(sys.argv[5]), sys.argv[6])
        return
    if mode == "flow":
        flow(addr, port, sys.argv[4])
        return
    handler = {"whoami": Whoami, "echo": Echo, "metadata": Metadata}[mode]
    _Server(addr, port, handler).serve_forever()


if __name__ == "__main__":
    main()
