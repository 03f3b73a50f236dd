"""The configuration document's parse and validation, this checkout beside a baseline checkout.

The 5,000-host document of ``appliance_apply.py`` (100 networks, 1,000 floating IPs, ~0.7 MB)
is parsed by each checkout's :mod:`astara.configdoc` in a fresh interpreter of its own
(``PYTHONPATH`` on the checkout), the two alternated ``--pairs`` times in the same run.
Printed, never asserted (each run: medians of ``--rounds``, ms; printed: the best run and the
median run):

- ``json.loads`` alone (the same code in both: how much the machine moved between the two)
- ``json.loads`` + ``parse_document`` (what the API's PUT does), and ``decode_document``
  (straight from the bytes) where the checkout has it
- a document with 5 errors: every error listed (the second pass)
- ``document_json`` of a freshly parsed document, ``with_floating_ips`` with one added
- memory: the parsed document's Python objects (tracemalloc), the peak while parsing (the
  body's JSON objects live at once with the document, from ``json.loads``), the resident memory
  ``import astara.configdoc`` adds to a bare interpreter, and the resident memory five whole
  documents parsed in turn leave (each while the one before lives)

    .venv/bin/python benchmarks/configdoc_parse.py --base /path/to/main-checkout [--rounds 7]
        [--pairs 3]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import gc
import json
import os
import statistics
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()
sys.path.insert(0, str(HERE.parent))

from appliance_apply import document  # noqa: E402  (the benchmarks' 5,000-host router)


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def _median_ms(fn: Any, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        gc.collect()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def _broken(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` wrong in five places, of the structure and of the meaning."""
    bad = copy.deepcopy(data)
    conf = bad["configuration"]
    conf["networks"][3]["address_allocations"][7]["hostname"] = "a b"
    conf["networks"][40]["interface"]["mtu"] = "big"
    conf["floating_ips"][500]["floating_ip"] = "nope"
    conf["networks"][90]["surprise"] = 1
    conf["static_routes"] = [{"destination": "10.50.0.0/16", "nexthop": "10.77.0.1"}]
    return bad


def worker(rounds: int) -> dict[str, Any]:
    """The measures of the astara on ``sys.path`` (run in a fresh interpreter)."""
    before = _rss_kb()
    import astara.configdoc as configdoc

    out: dict[str, Any] = {"import_rss_kb": _rss_kb() - before, "source": configdoc.__file__}
    data = document(100, 5000, 1000)
    raw = json.dumps(data).encode()
    out["json.loads"] = _median_ms(lambda: json.loads(raw), rounds)
    out["json.loads + parse_document"] = _median_ms(
        lambda: configdoc.parse_document(json.loads(raw)), rounds
    )
    decode = getattr(configdoc, "decode_document", None)
    if decode is not None:
        out["decode_document (bytes)"] = _median_ms(lambda: decode(raw), rounds)
    bad = _broken(data)
    try:
        configdoc.parse_document(bad)
    except configdoc.ValidationError as exc:
        out["errors listed"] = len(exc.errors())

    def refuse() -> None:
        with contextlib.suppress(configdoc.ValidationError):
            configdoc.parse_document(bad)

    out["5 errors, every one listed"] = _median_ms(refuse, rounds)
    docs = [configdoc.parse_document(json.loads(raw)) for _ in range(rounds)]
    out["document_json (fresh)"] = _median_ms(lambda: configdoc.document_json(docs.pop()), rounds)
    doc = configdoc.parse_document(json.loads(raw))
    fips = data["configuration"]["floating_ips"]
    more = [*fips, {"floating_ip": "100.64.200.1", "fixed_ip": "10.0.99.10"}]
    out["with_floating_ips (+1)"] = _median_ms(
        lambda: configdoc.with_floating_ips(doc, copy.deepcopy(more), fips), rounds
    )
    docs.clear()
    parsed = json.loads(raw)
    gc.collect()
    tracemalloc.start()
    kept = configdoc.parse_document(parsed)
    gc.collect()
    out["document_kb"] = tracemalloc.get_traced_memory()[0] // 1024
    tracemalloc.stop()
    del parsed, kept
    parsers = [("json.loads + parse_document", lambda: configdoc.parse_document(json.loads(raw)))]
    if decode is not None:
        parsers.append(("decode_document (bytes)", lambda: decode(raw)))
    for name, parse in parsers:
        if parse is not None:
            gc.collect()
            tracemalloc.start()
            kept = parse()
            out[f"peak_kb {name}"] = tracemalloc.get_traced_memory()[1] // 1024
            tracemalloc.stop()
            del kept
    out["rss_kb after 5 whole documents"] = _documents_in_turn(configdoc, data)
    return out


def _documents_in_turn(configdoc: Any, data: dict[str, Any]) -> int:
    """The resident memory five whole documents leave, each parsed (``json.loads`` and
    ``parse_document``, as the API's PUT) while the one before it lives (as the API keeps the
    running one until the new one is applied): what the arenas' holes keep."""
    bodies = []
    for i in range(5):
        data["configuration"]["tenant_id"] = f"tenant-{i}"
        bodies.append(json.dumps(data).encode())
    gc.collect()
    before = _rss_kb()
    current = None
    for body in bodies:
        current = configdoc.parse_document(json.loads(body))
    gc.collect()
    return _rss_kb() - before if current is not None else 0


def run(checkout: Path, rounds: int) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(checkout)}
    answer = subprocess.run([sys.executable, str(HERE), "--worker", "--rounds", str(rounds)],
                            env=env, capture_output=True, text=True, check=True)  # fmt: skip
    return json.loads(answer.stdout)  # type: ignore[no-any-return]


def _cell(values: list[Any]) -> str:
    """The best of the runs and their median (a loaded host moves single runs by 2-4x)."""
    if not values:
        return "-"
    low, middle = min(values), statistics.median(values)
    if not isinstance(low, float):
        return str(low) if low == max(values) else f"{low}-{max(values)}"
    return f"{low:.1f} ({middle:.1f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, required=False, help="the baseline's checkout")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--pairs", type=int, default=3, help="runs of each, alternated")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.rounds)))
        return
    checkouts = {"this": HERE.parents[1], **({"base": args.base} if args.base else {})}
    runs: dict[str, list[dict[str, Any]]] = {key: [] for key in checkouts}
    for _ in range(args.pairs):
        for key, checkout in checkouts.items():
            runs[key].append(run(checkout, args.rounds))
    names = [n for found in runs.values() for r in found for n in r if n != "source"]
    print(f"{'':44}" + "".join(f"{k:>18}" for k in runs) + f"   best (median) of {args.pairs} runs")
    for name in dict.fromkeys(names):
        cells = [_cell([r[name] for r in found if name in r]) for found in runs.values()]
        print(f"{name:44}" + "".join(f"{c:>18}" for c in cells))
    for key, found in runs.items():
        print(f"{key}: {found[0]['source']}")


if __name__ == "__main__":
    main()
