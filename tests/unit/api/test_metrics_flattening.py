"""How the numbers the orchestrator reports become Prometheus samples."""

from __future__ import annotations

from astara.orchestrator.metrics import numeric_leaves


def test_nested_numbers_become_names_and_ids_become_labels():
    report = {
        "uptime": 12.5,
        "ok": True,
        "status": "running",  # not a number: not a metric
        "listener": {"messages": 42},
        "workers": [{"id": 3, "queued": 1}, {"queued": 2}, {"worker": 7, "queued": 0}],
        "transitions": {"6f1c-router": 7},
    }
    assert sorted(numeric_leaves("astara_health", report)) == [
        ("astara_health_listener_messages", (), 42.0),
        ("astara_health_ok", (), 1.0),
        ("astara_health_transitions", (("transitions", "6f1c-router"),), 7.0),
        ("astara_health_uptime", (), 12.5),
        ("astara_health_workers_queued", (("workers", "1"),), 2.0),
        ("astara_health_workers_queued", (("workers", "3"),), 1.0),
        ("astara_health_workers_queued", (("workers", "7"),), 0.0),
    ]


def test_intake_counters_become_one_family_by_outcome_and_reason():
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.registry import Collector

    from astara.orchestrator.metrics import intake_family

    counters = {"received": 5, "dispatched": 1, "dropped.too_deep": 2, "ignored.start_event": 2}

    class One(Collector):
        def collect(self):  # type: ignore[no-untyped-def]
            yield intake_family(counters)

    registry = CollectorRegistry()
    registry.register(One())
    text = generate_latest(registry).decode()
    assert 'astara_intake_messages_total{outcome="dropped",reason="too_deep"} 2.0' in text
    assert 'astara_intake_messages_total{outcome="ignored",reason="start_event"} 2.0' in text
    assert "received" not in text.split("# TYPE")[-1]
