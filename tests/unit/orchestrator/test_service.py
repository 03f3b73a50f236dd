"""astara-orchestrator's start-up: one clear line and exit 2 for bad configuration."""

from __future__ import annotations

import pickle
import subprocess
import sys
from pathlib import Path

import pytest

from astara.orchestrator import service
from astara.orchestrator.service import ServiceBackends, WiringError, front_door, main


def ini(tmp_path: Path, body: str) -> str:
    path = tmp_path / "orchestrator.ini"
    path.write_text(f"[DEFAULT]\nstate_dir = {tmp_path}\n{body}\n")
    return str(path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    err = capsys.readouterr().err.strip()
    return code, err


def test_a_bad_value_names_the_option(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    code, err = run(capsys, "--config-file", ini(tmp_path, "num_worker_processes = lots"))
    assert code == 2 and len(err.splitlines()) == 1
    assert "num_worker_processes" in err and "Traceback" not in err


def test_a_missing_file_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    code, err = run(capsys, "--config-file", str(tmp_path / "nope.ini"))
    assert code == 2 and "nope.ini" in err and len(err.splitlines()) == 1


def test_an_unknown_compute_provider_lists_the_installed_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    code, err = run(capsys, "--config-file", ini(tmp_path, "compute_provider = bogus"))
    assert code == 2 and "compute_provider" in err and "fake" in err


def test_unreachable_neutron_is_one_line_and_exit_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
):
    config = ini(
        tmp_path,
        "compute_provider = fake\nneutron_endpoint = http://127.0.0.1:9\n"
        "management_network_id = 00000000-0000-0000-0000-000000000001",
    )
    code, err = run(capsys, "--config-file", config)
    assert code == 1 and "router driver" in err and len(err.splitlines()) == 1


def test_front_doors_are_imported_lazily_with_a_clear_error():
    with pytest.raises(WiringError, match=r"astara\.nothing\.Here is not available"):
        front_door("astara.nothing.Here")
    assert front_door("astara.orchestrator.engine.Engine").__name__ == "Engine"


def test_fake_provider_brings_its_own_in_memory_appliances(tmp_path: Path):
    from astara.providers import load_provider

    conf = service.load_service_config([ini(tmp_path, "compute_provider = fake")])
    provider = load_provider(conf)
    assert provider.appliance_client is not None  # type: ignore[attr-defined]
    assert conf.transport_url.startswith("rabbit://")


def test_worker_backends_factory_survives_pickling(tmp_path: Path):
    factory = ServiceBackends([ini(tmp_path, "")], ["--debug"])
    assert pickle.loads(pickle.dumps(factory)) == factory


def test_without_config_file_astara_config_is_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setenv("ASTARA_CONFIG", ini(tmp_path, "num_worker_threads = none"))
    code, err = run(capsys)
    assert code == 2 and "num_worker_threads" in err


@pytest.mark.parametrize("check_schema", [True, False])
def test_workers_open_the_debug_store_without_alembic(tmp_path: Path, check_schema: bool):
    """The service checks the schema; its workers only open the store (alembic is ~30 MB)."""
    code = (
        "import sys\n"
        "from astara.orchestrator.service import load_service_config\n"
        "from astara.db.api import DebugStore\n"
        f"conf = load_service_config([{ini(tmp_path, '')!r}])\n"
        f"DebugStore.from_conf(conf, check_schema={check_schema})\n"
        "print('alembic' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == str(check_schema)


def test_unreachable_coordination_service_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    from astara.orchestrator.fakes import FakeBackends
    from astara_localcloud.services import free_port

    monkeypatch.setattr(service, "build_backends", lambda conf, **_: FakeBackends()())
    url = f"etcd3+http://127.0.0.1:{free_port()}?timeout=5"  # nothing listens there
    config = ini(
        tmp_path,
        "compute_provider = fake\napi_port = 0\n"
        f"[coordination]\nenabled = true\nurl = {url}\nmember_id = m1",
    )
    code, err = run(capsys, "--config-file", config)
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "[coordination]" in err and "cannot join" in err and "Traceback" not in err


def test_coordination_enabled_without_url_is_one_line_and_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
):
    from astara.orchestrator.fakes import FakeBackends

    monkeypatch.setattr(service, "build_backends", lambda conf, **_: FakeBackends()())
    config = ini(tmp_path, "compute_provider = fake\n[coordination]\nenabled = true")
    code, err = run(capsys, "--config-file", config)
    assert code == 2 and len(err.splitlines()) == 1 and "[coordination] url" in err, err
