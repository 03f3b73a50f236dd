"""The errors of a document: each with its path (``loc``), a message and a type, as the API's
422 answers list them."""

from __future__ import annotations

from typing import Any

Loc = tuple[str | int, ...]
ErrorDetails = dict[str, Any]  # type, loc, msg, input
Errors = list[ErrorDetails]


class ValidationError(ValueError):
    """The document is invalid; :meth:`errors` lists every bad field: type, loc, msg, input."""

    def __init__(self, title: str, errors: Errors) -> None:
        self.title = title
        self._errors = errors
        lines = [f"{len(errors)} validation error(s) for {title}"]
        for e in errors[:20]:
            lines.append(".".join(map(str, e["loc"])) or "(root)")
            lines.append(f"  {e['msg']} [type={e['type']}]")
        super().__init__("\n".join(lines))

    def errors(self) -> Errors:
        return list(self._errors)


def error(loc: Loc, kind: str, msg: str, value: Any) -> ErrorDetails:
    return {"type": kind, "loc": loc, "msg": msg, "input": value}
