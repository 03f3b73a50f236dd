"""The default database (SQLite in state_dir) and astara-dbsync's messages."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from oslo_config import cfg

from astara.cli import dbsync
from astara.core.events import Resource
from astara.db import migration
from astara.db.api import DebugStore
from astara.db.engine import database_url
from astara.orchestrator.config import register_opts


def _conf(state_dir: Path) -> cfg.ConfigOpts:
    conf = cfg.ConfigOpts()
    register_opts(conf)
    conf([], default_config_files=[])
    conf.set_override("state_dir", str(state_dir))
    return conf


def test_default_database_is_sqlite_in_state_dir_and_is_created_on_first_use(tmp_path: Path):
    state_dir = tmp_path / "state" / "nested"
    conf = _conf(state_dir)
    assert database_url(conf) == f"sqlite:///{state_dir / 'astara.db'}"
    store = DebugStore.from_conf(conf)
    assert (state_dir / "astara.db").exists()
    assert migration.current(database_url(conf)) == migration.head()
    store.set_resource_debug("r-1", "investigating")
    again = DebugStore.from_conf(conf)  # a second start finds the schema and the rows
    assert "investigating" in (again.effective_debug(Resource("r-1", "t")) or "")


def _dbsync(*args: str) -> subprocess.CompletedProcess[str]:
    """The installed astara-dbsync console script, as operators run it."""
    script = str(Path(sys.executable).parent / "astara-dbsync")
    return subprocess.run([script, *args], capture_output=True, text=True, timeout=120)


def test_dbsync_upgrade_then_current_then_history(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    ini = str(tmp_path / "orchestrator.ini")
    Path(ini).write_text(f"[DEFAULT]\nstate_dir = {tmp_path}\n")
    assert dbsync.main(["--config-file", ini, "current"]) == 0
    assert capsys.readouterr().out.startswith("none")
    assert dbsync.main(["--config-file", ini, "upgrade"]) == 0
    assert capsys.readouterr().out.strip().endswith(f"at revision {migration.head()}")
    assert dbsync.main(["--config-file", ini, "current"]) == 0
    assert capsys.readouterr().out.strip() == migration.head()
    history = _dbsync("history")
    assert history.returncode == 0
    doc = migration.history()[-1].doc
    assert history.stdout.splitlines() == [f"<base> -> {migration.head()}: {doc}"]


def test_dbsync_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert dbsync.main(["--config-file", str(tmp_path / "nope.ini"), "current"]) == 2
    expected = f"astara-dbsync: configuration file not found: {tmp_path}/nope.ini"
    assert capsys.readouterr().err.strip() == expected

    for url, expected in [
        ("notaurl", "astara-dbsync: option [database] connection is not a database URL"),
        ("mysql://u@127.0.0.1/x", "driver not installed (No module named 'MySQLdb')"),
    ]:
        ini = tmp_path / "url.ini"
        ini.write_text(f"[database]\nconnection = {url}\n")
        assert dbsync.main(["--config-file", str(ini), "upgrade"]) == 2
        err = capsys.readouterr().err
        assert expected in err and len(err.strip().splitlines()) == 1

    ini = tmp_path / "bad.ini"
    ini.write_text("[database]\nconnection = mysql+pymysql://astara:secret@127.0.0.1:1/astara\n")
    unreachable = _dbsync("--config-file", str(ini), "upgrade")
    assert unreachable.returncode == 1
    assert len(unreachable.stderr.strip().splitlines()) == 1
    assert "Can't connect" in unreachable.stderr and "secret" not in unreachable.stderr
