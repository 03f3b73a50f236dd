"""``astara-local status`` for people: :meth:`LocalCloud.status` as titled plain-text tables.

Scripts use ``astara-local status --json`` (the same data, as JSON).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

TITLES = {
    "orchestrator": "Orchestrator",
    "nova": "Nova",
    "nova_appliances": "Appliances (Nova servers)",
    "processes": "Processes",
    "namespaces": "Namespaces",
    "bridges": "Bridges (fabric)",
    "appliances": "Appliances",
    "vms": "VMs",
}

MAPPING_COLUMNS = {"bridges": ("bridge", "ports")}  # other mappings: name, value


def render(status: Mapping[str, Any]) -> str:
    """Every part of ``status``: a line for a value, a table for a list of rows or a
    mapping, "none" for an empty one."""
    blocks = []
    for key, value in status.items():
        title = TITLES.get(key, key.replace("_", " ").capitalize())
        if value is None or isinstance(value, str | int | float):
            blocks.append(f"{title}: {'-' if value is None else value}")
        elif not value:
            blocks.append(f"{title}: none")
        elif isinstance(value, Mapping):
            name, cell = MAPPING_COLUMNS.get(key, ("name", "value"))
            rows = [{name: k, cell: _cell(v)} for k, v in value.items()]
            blocks.append(f"{title}\n{table(rows)}")
        elif all(isinstance(item, Mapping) for item in value):
            blocks.append(f"{title}\n{table(value)}")
        else:
            blocks.append(f"{title}\n" + "\n".join(f"  {_cell(item)}" for item in value))
    return "\n\n".join(blocks)


def table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Rows as aligned columns under a header (the union of their keys, in first-seen order)."""
    columns: list[str] = []
    for row in rows:
        columns += [key for key in row if key not in columns]
    cells = [[_cell(row.get(column)) for column in columns] for row in rows]
    widths = [max(len(c), *(len(line[n]) for line in cells)) for n, c in enumerate(columns)]
    lines = [[c.upper() for c in columns], ["-" * w for w in widths], *cells]
    return "\n".join(
        "  " + "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}={_cell(v)}" for k, v in value.items())
    if isinstance(value, list | tuple | set):
        return ", ".join(_cell(v) for v in value) or "-"
    return str(value)
