"""The architecture rules of the layout, checked on the real import graph."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from setuptools import find_packages

ROOT = Path(__file__).parents[2]
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
    forbidden = (*ORCHESTRATOR_ONLY, "pyroute2", "astara_localcloud", "astara.providers")
    assert not {m for m in loaded if m.startswith(forbidden)}


def test_the_appliance_contract_names_every_other_package():
    """import-linter's appliance contract lists what it forbids (every package but configdoc),
    so a new package must be added there; the other contracts say ``astara.*``."""
    import pkgutil

    import astara

    config = _pyproject(ROOT)
    contracts = {c["id"]: c for c in config["tool"]["importlinter"]["contracts"]}
    packages = {f"astara.{m.name}" for m in pkgutil.iter_modules(astara.__path__) if m.ispkg}
    forbidden = set(contracts["appliance"]["forbidden_modules"])
    assert forbidden == packages - {"astara.appliance", "astara.configdoc"}


def _pyproject(directory: Path) -> dict:
    return tomllib.loads((directory / "pyproject.toml").read_text())


def test_the_product_distribution_does_not_carry_the_kit():
    """``astara`` packages only ``astara.*`` (the kit is the ``astara-localcloud`` distribution
    in localcloud/, with ``astara-local``); the kit packages only itself and needs the product."""
    product, kit = _pyproject(ROOT), _pyproject(ROOT / "localcloud")
    include = product["tool"]["setuptools"]["packages"]["find"]["include"]
    shipped = find_packages(str(ROOT), include=include)
    assert "astara.providers" in shipped
    assert [p for p in shipped if p != "astara" and not p.startswith("astara.")] == []
    assert not [p for p in shipped if "localcloud" in p]
    assert "astara-local" not in product["project"]["scripts"]
    scripts = product["project"]["scripts"].values()
    assert not [target for target in scripts if target.startswith("astara_localcloud")]

    kit_include = kit["tool"]["setuptools"]["packages"]["find"]["include"]
    kit_packages = find_packages(str(ROOT / "localcloud"), include=kit_include)
    assert kit_packages and all(p.startswith("astara_localcloud") for p in kit_packages)
    assert kit["project"]["scripts"]["astara-local"] == "astara_localcloud.cli:main"
    assert "astara[orchestrator,appliance]" in kit["project"]["dependencies"]


def test_the_product_runs_without_the_kit():
    """What the orchestrator and the netns provider load never pulls in the kit (beyond the
    import-linter contract: also an import made at run time)."""
    loaded = _modules_after_import("astara.orchestrator.service, astara.providers.netns")
    assert not {m for m in loaded if m.startswith("astara_localcloud")}
