"""DebugStore and migrations on SQLite, MariaDB and PostgreSQL (the same suite on each)."""

from __future__ import annotations

import datetime
import multiprocessing
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from oslo_config import cfg

from astara.cli import dbsync
from astara.core.events import Resource
from astara.db import migration
from astara.db.api import DatabaseNotReady, DebugStore
from astara.db.engine import dispose_all, get_engine
from astara.db.models import Base, DebugScope
from astara.orchestrator.config import register_opts

ROUTER = Resource(id="r-1", tenant_id="t-1")


@pytest.fixture
def store(db_url: str) -> DebugStore:
    migration.upgrade(db_url)
    return DebugStore(get_engine(db_url))


def _conf(url: str, tmp_path: Path) -> cfg.ConfigOpts:
    conf = cfg.ConfigOpts()
    register_opts(conf)
    conf([], default_config_files=[])
    conf.set_override("state_dir", str(tmp_path))
    conf.set_override("connection", url, group="database")
    return conf


def test_upgrade_creates_the_schema_the_models_describe(db_url: str):
    assert migration.current(db_url) is None
    migration.upgrade(db_url)
    migration.upgrade(db_url)  # idempotent
    assert migration.current(db_url) == migration.head()
    with get_engine(db_url).connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []


def test_dbsync_command_upgrades_and_reports(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    ini = tmp_path / "orchestrator.ini"
    ini.write_text(f"[database]\nconnection = {db_url}\n")
    script = str(Path(sys.executable).parent / "astara-dbsync")
    upgraded = subprocess.run(
        [script, "--config-file", str(ini), "upgrade"], capture_output=True, text=True, check=True
    )
    assert upgraded.stdout.strip().endswith(f"at revision {migration.head()}")
    assert ":astara_test@" not in upgraded.stdout  # the password stays hidden
    assert dbsync.main(["--config-file", str(ini), "current"]) == 0
    assert capsys.readouterr().out.strip() == migration.head()


def test_from_conf_refuses_an_unmigrated_database(db_url: str, tmp_path: Path):
    conf = _conf(db_url, tmp_path)
    with pytest.raises(DatabaseNotReady, match="astara-dbsync"):
        DebugStore.from_conf(conf)
    migration.upgrade(db_url)
    DebugStore.from_conf(conf).set_global_debug("maintenance")
    assert DebugStore.from_conf(conf).global_debug() is not None


def test_set_list_clear_at_each_level(store: DebugStore):
    before = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    store.set_resource_debug("r-1", "disk full")
    store.set_tenant_debug("t-9", "tenant migration")
    store.set_global_debug("upgrade window")
    assert [(e.target, e.reason) for e in store.list_resource_debug()] == [("r-1", "disk full")]
    assert [(e.target, e.reason) for e in store.list_tenant_debug()] == [
        ("t-9", "tenant migration")
    ]
    entry = store.global_debug()
    assert entry is not None and entry.reason == "upgrade window"
    assert before <= entry.since <= datetime.datetime.now(datetime.UTC)
    assert {e.scope for e in store.entries()} == set(DebugScope)

    assert store.clear_resource_debug("r-1") is True
    assert store.clear_resource_debug("r-1") is False
    assert store.clear_tenant_debug("t-9") is True
    assert store.clear_global_debug() is True
    assert store.entries() == []


def test_setting_again_replaces_the_reason(store: DebugStore):
    store.set_resource_debug("r-1", "first")
    store.set_resource_debug("r-1", "second")
    assert [e.reason for e in store.list_resource_debug()] == ["second"]


def test_effective_debug_prefers_resource_then_tenant_then_global(store: DebugStore):
    assert store.effective_debug(ROUTER) is None
    store.set_global_debug("everyone")
    assert "global" in (store.effective_debug(ROUTER) or "")
    assert store.effective_debug(ROUTER) is not None
    store.set_tenant_debug("t-1", "this tenant")
    assert "tenant t-1" in (store.effective_debug(ROUTER) or "")
    store.set_resource_debug("r-1", "this router")
    reason = store.effective_debug(ROUTER) or ""
    assert reason.startswith("resource r-1") and reason.endswith("this router")
    # Other resources and tenants are untouched by resource and tenant modes.
    store.clear_global_debug()
    assert store.effective_debug(Resource(id="r-2", tenant_id="t-2")) is None
    assert "tenant t-1" in (store.effective_debug(Resource(id="r-3", tenant_id="t-1")) or "")


def test_debug_modes_survive_a_restart(store: DebugStore, db_url: str):
    store.set_tenant_debug("t-1", "kept across restarts")
    dispose_all()
    code = (
        "import sys; from astara.db.api import DebugStore; from astara.db.engine import get_engine;"
        "from astara.core.events import Resource;"
        "print(DebugStore(get_engine(sys.argv[1])).effective_debug(Resource('r-5', 't-1')))"
    )
    out = subprocess.run([sys.executable, "-c", code, db_url], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "kept across restarts" in out.stdout


def _hammer(url: str, worker: int, rounds: int) -> None:
    store = DebugStore(get_engine(url))
    for i in range(rounds):
        store.set_resource_debug("shared", f"worker {worker} round {i}")
        store.set_resource_debug(f"own-{worker}", "mine")
        store.effective_debug(Resource(id="shared", tenant_id="t"))
        store.clear_resource_debug(f"own-{worker}")


def test_threads_and_processes_write_at_once(store: DebugStore, db_url: str):
    errors: list[BaseException] = []

    def thread_body(worker: int) -> None:
        try:
            _hammer(db_url, worker, 15)
        except BaseException as err:  # collected and asserted below
            errors.append(err)

    threads = [threading.Thread(target=thread_body, args=(n,)) for n in range(4)]
    # spawn, as SQLite forbids carrying its open state across fork (see docs/operators.md).
    context = multiprocessing.get_context("spawn")
    processes = [context.Process(target=_hammer, args=(db_url, 10 + n, 15)) for n in range(2)]
    for runner in [*threads, *processes]:
        runner.start()
    for thread in threads:
        thread.join(timeout=120)
    for process in processes:
        process.join(timeout=120)
    assert errors == []
    assert [p.exitcode for p in processes] == [0, 0]
    entries = store.list_resource_debug()
    assert [e.target for e in entries] == ["shared"]
    assert entries[0].reason.endswith("round 14")
