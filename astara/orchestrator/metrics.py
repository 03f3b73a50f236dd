"""Prometheus metrics of the management API, read from the running orchestrator at scrape time.

Nothing here counts on its own behalf except API requests: resource gauges come from
``Control.list_resources()``, and every number in ``Control.health()`` and
``Control.workers_report()`` is exported as it is (nested keys joined with ``_``; identifiers
that are not metric names, such as resource ids, become label values).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client import Counter as RequestCounter
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from astara.core.control import Control, ResourceView

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
Labels = tuple[tuple[str, str], ...]
IDENTIFIER_KEYS = ("id", "name", "worker")  # what names an item of a list (a label, not a value)


def numeric_leaves(
    prefix: str, data: Mapping[str, Any], labels: Labels = ()
) -> Iterator[tuple[str, Labels, float]]:
    """Every number (and bool) in ``data`` as (metric name, labels, value)."""
    for key, value in data.items():
        key = str(key)
        if not _NAME.match(key):  # e.g. a resource id: a label of the parent, not a name
            label = prefix.rsplit("_", 1)[-1]
            if isinstance(value, Mapping):
                yield from numeric_leaves(prefix, value, (*labels, (label, key)))
            elif _is_number(value):
                yield prefix, (*labels, (label, key)), float(value)
            continue
        name = f"{prefix}_{key}"
        if _is_number(value):
            yield name, labels, float(value)
        elif isinstance(value, Mapping):
            yield from numeric_leaves(name, value, labels)
        elif isinstance(value, list | tuple):
            for index, item in enumerate(value):
                if isinstance(item, Mapping):  # one label per item: its identifier, or index
                    ident = next((item[k] for k in IDENTIFIER_KEYS if k in item), index)
                    rest = {k: v for k, v in item.items() if k not in IDENTIFIER_KEYS}
                    yield from numeric_leaves(name, rest, (*labels, (key, str(ident))))


def _is_number(value: object) -> bool:
    return isinstance(value, int | float)


class ControlCollector(Collector):
    """Builds the orchestrator's metrics from its Control at every scrape."""

    def __init__(self, control: Control) -> None:
        self._control = control

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        views = self._control.list_resources()
        states = Counter((v.kind, v.state, v.instance_status) for v in views)
        resources = GaugeMetricFamily(
            "astara_resources",
            "Resources the orchestrator manages, by kind, state and instance status.",
            labels=["kind", "state", "instance_status"],
        )
        for (kind, state, status), count in sorted(states.items()):
            resources.add_metric([kind, state, status], count)
        yield resources
        yield GaugeMetricFamily(
            "astara_resources_in_debug",
            "Resources in debug mode (their own, their tenant's or global).",
            value=sum(1 for v in views if v.debug_reason),
        )
        yield GaugeMetricFamily(
            "astara_resource_boot_failures",
            "Failed boots in a row, summed over all resources.",
            value=sum(v.boot_failures for v in views),
        )
        yield from traffic_families(views)
        yield gateway_family(views)
        health = self._control.health()
        yield from _families("astara_health", health)
        yield from _families("astara_workers", self._control.workers_report())
        listener = health.get("listener")
        if isinstance(listener, Mapping):
            yield intake_family(listener)


def traffic_families(views: Iterable[ResourceView]) -> Iterator[CounterMetricFamily]:
    """The appliances' traffic counters at their last READ (``stats_period``), one family per
    counter (``astara_appliance_interface_bytes_in_total``, ...), by resource and interface."""
    families: dict[str, CounterMetricFamily] = {}
    for view in views:
        for ifname, counters in sorted(view.traffic.items()):
            for counter, value in sorted(counters.items()):
                if not _NAME.match(counter):
                    continue
                if counter not in families:
                    families[counter] = CounterMetricFamily(
                        f"astara_appliance_interface_{counter}",
                        f"The appliance's {counter.replace('_', ' ')} per interface, as last "
                        "read (GET /v1/system/stats); restarts from 0 when the appliance does.",
                        labels=["resource", "tenant", "interface"],
                    )
                families[counter].add_metric([view.id, view.tenant_id, ifname], float(value))
    yield from families.values()


def gateway_family(views: Iterable[ResourceView]) -> GaugeMetricFamily:
    """``astara_appliance_gateway_reachable``: 1 when the appliance's default gateway of a
    family answers its ping, 0 when it does not (families without a gateway are absent)."""
    family = GaugeMetricFamily(
        "astara_appliance_gateway_reachable",
        "Whether the appliance's default gateway answers its ping (GET /v1/status/), by "
        "resource and address family; 0 is an upstream fault.",
        labels=["resource", "tenant", "family"],
    )
    for view in views:
        for name, answers in sorted(view.gateways.items()):
            family.add_metric([view.id, view.tenant_id, name], 1.0 if answers else 0.0)
    return family


def intake_family(counters: Mapping[str, Any]) -> CounterMetricFamily:
    """The listener's ``<outcome>.<reason>`` counters as ``astara_intake_messages_total``."""
    family = CounterMetricFamily(
        "astara_intake_messages",
        "Notifications the intake ignored or dropped, by outcome and reason (every message "
        "is counted once and acked or dead-lettered).",
        labels=["outcome", "reason"],
    )
    for key, value in sorted(counters.items()):
        outcome, dot, reason = str(key).partition(".")
        if dot and _is_number(value):
            family.add_metric([outcome, reason], float(value))
    return family


def _families(prefix: str, data: Mapping[str, Any]) -> Iterator[GaugeMetricFamily]:
    families: dict[str, GaugeMetricFamily] = {}
    label_names: dict[str, tuple[str, ...]] = {}
    for name, labels, value in numeric_leaves(prefix, data):
        keys = tuple(k for k, _ in labels)
        if name not in families:
            families[name] = GaugeMetricFamily(name, f"{name} as reported", labels=list(keys))
            label_names[name] = keys
        if label_names[name] == keys:  # a family keeps one label set
            families[name].add_metric([v for _, v in labels], value)
    yield from families.values()


def new_registry(control: Control) -> tuple[CollectorRegistry, RequestCounter]:
    """A registry of this server's own (several servers may live in one process)."""
    registry = CollectorRegistry()
    registry.register(ControlCollector(control))
    requests = RequestCounter(
        "astara_api_requests",
        "Management API requests by method, route and status code.",
        ["method", "route", "status"],
        registry=registry,
    )
    return registry, requests
