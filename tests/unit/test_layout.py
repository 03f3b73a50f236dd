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


def test_the_appliance_contract_names_every_other_package():
    """import-linter's appliance contract lists what it forbids (every package but configdoc),
    so a new package must be added there; the other contracts say ``astara.*``."""
    import pkgutil
    import tomllib
    from pathlib import Path

    import astara

    config = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    contracts = {c["id"]: c for c in config["tool"]["importlinter"]["contracts"]}
    packages = {f"astara.{m.name}" for m in pkgutil.iter_modules(astara.__path__) if m.ispkg}
    forbidden = set(contracts["appliance"]["forbidden_modules"])
    assert forbidden == packages - {"astara.appliance", "astara.configdoc"}
