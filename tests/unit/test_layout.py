"""The architecture rules of the layout, checked on the real import graph."""

from __future__ import annotations

import subprocess
import sys

ORCHESTRATOR_ONLY = ("oslo_messaging", "sqlalchemy", "oslo_config", "openstack", "tooz", "kombu")


def _modules_after_import(module: str) -> set[str]:
    code = f"import sys, {module}; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_appliance_does_not_import_orchestrator_dependencies():
    loaded = _modules_after_import("astara.appliance")
    assert not {m for m in loaded if m.split(".")[0] in ORCHESTRATOR_ONLY}


def test_core_is_free_of_openstack_and_linux_adapters():
    loaded = _modules_after_import("astara.core")
    forbidden = (*ORCHESTRATOR_ONLY, "pyroute2", "astara.localcloud", "astara.providers")
    assert not {m for m in loaded if m.startswith(forbidden)}
