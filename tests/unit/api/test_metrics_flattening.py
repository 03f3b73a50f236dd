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
