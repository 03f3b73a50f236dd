"""A server of :mod:`astara.appliance.httpserver` on loopback, and a small client for it."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from astara.appliance import httpserver


class Answer:
    def __init__(self, status: int, headers: http.client.HTTPMessage, body: bytes) -> None:
        self.status_code = status
        self.headers = headers  # names case-insensitive
        self.content = body

    def json(self) -> Any:
        return json.loads(self.content)


class Client:
    """Requests over one kept-alive connection (a new one if the server closed it)."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.address = address
        self.conn = http.client.HTTPConnection(*address[:2], timeout=10)

    def request(self, method: str, url: str, content: bytes | None = None, json_body: Any = None,
                headers: dict[str, str] | None = None) -> Answer:  # fmt: skip
        headers = dict(headers or {})
        if json_body is not None:
            content = json.dumps(json_body).encode()
            headers.setdefault("Content-Type", "application/json")
        self.conn.request(method, url, body=content, headers=headers)
        answer = self.conn.getresponse()
        body = answer.read()
        if answer.will_close:
            self.conn.close()
        return Answer(answer.status, answer.headers, body)

    def get(self, url: str, **kwargs: Any) -> Answer:
        return self.request("GET", url, **kwargs)

    def put(self, url: str, json: Any = None, **kwargs: Any) -> Answer:
        return self.request("PUT", url, json_body=json, **kwargs)

    def close(self) -> None:
        self.conn.close()


@contextmanager
def serving(app: httpserver.App) -> Iterator[Client]:
    server = httpserver.Server(("127.0.0.1", 0), app)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)  # fmt: skip
    thread.start()
    client = Client(server.server_address)
    try:
        yield client
    finally:
        client.close()
        server.shutdown()
        server.server_close()
        thread.join(5)
