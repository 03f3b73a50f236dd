"""The messages of the appliance's HTTP layer (:mod:`astara.appliance.httpserver`): a request
as the application sees it, its response, and the rules a request head must pass."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MAX_LINE = 8192  # the request line, and each header line
MAX_HEADERS = 100
MAX_HEAD = 64 * 1024  # the whole request head
# A document of 5,000 hosts and 1,000 floating IPs is ~0.7 MB of JSON, and parsing it takes
# about ten times its size in Python objects: 4 MB bodies keep one parse inside the budget.
MAX_BODY = 4 * 1024 * 1024


@dataclass
class Request:
    """A request as the application sees it (head parsed, body read)."""

    method: str
    path: str  # percent-decoded, without the query
    headers: dict[str, str]  # names in lower case; repeated headers joined with ", "
    body: bytes = b""
    client: str = ""
    target: str = ""  # as sent: the path with its query, not decoded

    def media_type(self) -> str:
        """The Content-Type without its parameters, in lower case ("" if none)."""
        return self.headers.get("content-type", "").split(";")[0].strip().lower()


@dataclass
class Response:
    """What the application answers (a docstring: ``dataclasses`` then needs no ``inspect``)."""

    status: int
    body: bytes | str = b""
    headers: dict[str, str] = field(default_factory=dict)
    media_type: str = "application/json"
    after: Callable[[], None] | None = None  # run once the response is sent


def json_response(status: int, data: Any, headers: dict[str, str] | None = None) -> Response:
    """``data`` as compact UTF-8 JSON (as Starlette's JSONResponse writes it)."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    return Response(status, text, headers or {})


def error(status: int, detail: Any, headers: dict[str, str] | None = None) -> Response:
    """The JSON error body of every refusal: ``{"detail": ...}``."""
    return json_response(status, {"detail": detail}, headers)


App = Callable[[Request], Response]


class BadRequest(Exception):
    """The request cannot be read; answer ``status`` and close the connection."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


def check_head(head: bytes) -> None:
    """Refuse a request head (request line and headers, up to its empty line) that holds a
    NUL, a bare CR or LF, a folded line, or lines too long or too many (:class:`BadRequest`)."""
    if b"\0" in head:
        raise BadRequest(400, "NUL in the request head")
    crlf = head.count(b"\r\n")
    if head.count(b"\n") != crlf or head.count(b"\r") != crlf:
        raise BadRequest(400, "bare CR or LF in the request head")
    lines = head.split(b"\r\n")
    if len(lines[0]) > MAX_LINE:
        raise BadRequest(414, "request line too long")
    headers = lines[1:-2]  # the head ends with the empty line: "...\r\n\r\n"
    if len(headers) > MAX_HEADERS:
        raise BadRequest(431, "too many header lines")
    for line in headers:
        if len(line) > MAX_LINE:
            raise BadRequest(431, "header line too long")
        if line[:1] in (b" ", b"\t"):
            raise BadRequest(400, "folded or padded header line")
