"""The request body of the document applied last, and what a new body changes in it.

The API keeps the bytes of the last document it applied (~700 KB for 5,000 hosts), not its
parsed JSON (~4.4 MB of Python objects: more than any other part of the API's memory), and
compares a new body with them byte for byte. A body that is the same but inside its
``floating_ips`` array (the commonest change: a floating IP associated or released) has only
that array parsed; one that is the same throughout is not parsed at all.
"""

from __future__ import annotations

import functools
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DIFFERENT: Any = object()  # what :meth:`AppliedBody.floating_ips_of` says of another document
UNKNOWN: Any = object()

_KEY = b'"floating_ips"'
_ARRAY = re.compile(rb"[ \t\n\r]*:[ \t\n\r]*(\[[^\[\]]*\])")


@dataclass(frozen=True)
class AppliedBody:
    """A body applied: its bytes, the JSON of its floating-IP array, and where that array lies
    in the bytes (None when that is not certain: only a byte-identical body is then known;
    :data:`UNKNOWN`: found when first needed, not on the apply's path)."""

    raw: bytes
    floating_ips: Any
    known_span: Any = None

    @classmethod
    def of(cls, raw: bytes, floating_ips: Any) -> AppliedBody:
        """``raw``, whose floating IPs parsed to ``floating_ips`` (``[]`` if it has none)."""
        return cls(raw, floating_ips, UNKNOWN)

    @functools.cached_property
    def span(self) -> tuple[int, int] | None:
        if self.known_span is UNKNOWN:
            return floating_ips_span(self.raw, self.floating_ips)
        return self.known_span  # type: ignore[no-any-return]

    def floating_ips_of(self, body: bytes) -> Any:
        """The JSON of ``body``'s floating-IP array if ``body`` is this one but (maybe) inside
        that array; :data:`DIFFERENT` if anything else differs, or the array is not JSON
        (then the whole body is parsed, and says why)."""
        if body == self.raw:
            return self.floating_ips
        if self.span is None:
            return DIFFERENT
        start, end = self.span
        stop = len(body) - (len(self.raw) - end)
        if stop < start or body[:start] != self.raw[:start] or body[stop:] != self.raw[end:]:
            return DIFFERENT
        try:
            return json.loads(body[start:stop])
        except ValueError:  # UnicodeDecodeError is one too
            return DIFFERENT

    def replaced(self, body: bytes, floating_ips: Any) -> AppliedBody:
        """``body``, which :meth:`floating_ips_of` found to be this one with ``floating_ips``."""
        if body == self.raw or self.span is None:
            return self
        start, end = self.span
        return AppliedBody(body, floating_ips, (start, len(body) - (len(self.raw) - end)))

    def with_floating_ips(self, floating_ips: Any) -> AppliedBody | None:
        """This body with ``floating_ips`` (JSON) as its array: what a PUT of the whole
        document would send. None if it is not certain where the array lies."""
        if self.span is None:
            return None
        try:
            text = json.dumps(floating_ips).encode()
        except (TypeError, ValueError):
            return None
        start, end = self.span
        return AppliedBody(self.raw[:start] + text + self.raw[end:], floating_ips,
                           (start, start + len(text)))  # fmt: skip


@dataclass(frozen=True)
class SpilledBody:
    """An :class:`AppliedBody` whose bytes are left in the file they were saved to
    (``applied.json``): between requests the API holds its floating IPs and where they lie,
    not the ~700 KB body. Read back (~0.2 ms) only while that file is the one written."""

    path: Path
    stamp: tuple[int, int, int]  # inode, size, mtime (ns) of the file holding the bytes
    floating_ips: Any
    span: Any

    @classmethod
    def of(cls, path: Path, body: AppliedBody) -> SpilledBody | None:
        """``body`` spilled to ``path``, if that file holds its very bytes (else None)."""
        try:
            stat = os.stat(path)
            if stat.st_size != len(body.raw) or path.read_bytes() != body.raw:
                return None
        except OSError:
            return None
        return cls(path, (stat.st_ino, stat.st_size, stat.st_mtime_ns), body.floating_ips,
                   body.span)  # fmt: skip

    def load(self) -> AppliedBody | None:
        """The body again; None if the file changed since (the next PUT takes the full path)."""
        try:
            stat = os.stat(self.path)
            if (stat.st_ino, stat.st_size, stat.st_mtime_ns) != self.stamp:
                return None
            raw = self.path.read_bytes()
        except OSError:
            return None
        if len(raw) != self.stamp[1]:
            return None
        return AppliedBody(raw, self.floating_ips, self.span)


def floating_ips_span(raw: bytes, floating_ips: Any) -> tuple[int, int] | None:
    """Where the floating-IP array of ``raw`` (a body applied, whose array parsed to
    ``floating_ips``) lies, in bytes; None if that is not certain.

    The key occurs once (a valid document has no quotes in its strings and no other key of
    that name), and the array's items are objects of two address strings, so no bracket is in
    it but its own. The bytes found must parse to the very array the body's JSON holds.
    """
    if raw.count(_KEY) != 1:
        return None
    found = _ARRAY.match(raw, raw.index(_KEY) + len(_KEY))
    if found is None:
        return None
    try:
        if json.loads(found.group(1)) != floating_ips:
            return None
    except ValueError:
        return None
    return found.start(1), found.end(1)


def floating_ips_json(data: Any) -> Any:
    """The floating IPs of a document's parsed JSON (``[]`` if it has none: the default)."""
    try:
        return data["configuration"].get("floating_ips", [])
    except (TypeError, KeyError, AttributeError):
        return []
