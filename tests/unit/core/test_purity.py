"""Every module of astara.core (not only the package) stays free of adapters."""

from __future__ import annotations

import pkgutil
import subprocess
import sys

import astara.core

FORBIDDEN = (
    "oslo_",
    "sqlalchemy",
    "openstack",
    "tooz",
    "kombu",
    "httpx",
    "pyroute2",
    "astara_localcloud",
    "astara.providers",
    "astara.orchestrator",
    "astara.db",
    "astara.drivers",
)


def test_core_modules_import_no_adapters():
    modules = [f"astara.core.{m.name}" for m in pkgutil.iter_modules(astara.core.__path__)]
    code = f"import sys, {', '.join(modules)}; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert len(modules) >= 8
    assert not [m for m in out.stdout.split() if m.startswith(FORBIDDEN)]
