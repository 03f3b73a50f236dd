"""load_config: every CLI's configuration, with one clear line for a bad option."""

from __future__ import annotations

from pathlib import Path

import pytest

from astara.core.settings import ConfigError
from astara.orchestrator.settings import load_config, require


def _ini(tmp_path: Path, text: str) -> str:
    path = tmp_path / "orchestrator.ini"
    path.write_text(text)
    return str(path)


def test_reads_options_with_their_seed_names(tmp_path: Path):
    conf = load_config([_ini(tmp_path, "[DEFAULT]\napi_port = 4000\nmanagement_net_id = n1\n")])
    assert conf.api_port == 4000
    assert conf.management_network_id == "n1"  # the seed's deprecated spelling still works


def test_bad_value_names_the_option_and_the_file(tmp_path: Path):
    path = _ini(tmp_path, "[DEFAULT]\nnum_worker_processes = 0\n")
    with pytest.raises(ConfigError) as err:
        load_config([path])
    message = str(err.value)
    assert message.startswith("bad value for option [DEFAULT] num_worker_processes in ")
    assert path in message and "\n" not in message


def test_missing_file_and_parse_errors_are_one_line(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"^configuration file not found: .*nope\.ini$"):
        load_config([str(tmp_path / "nope.ini")])
    with pytest.raises(ConfigError, match=r"^cannot parse .*orchestrator\.ini: .*section"):
        load_config([_ini(tmp_path, "[DEFAULT\napi_port = 1\n")])


def test_require_names_the_unset_option(tmp_path: Path):
    conf = load_config([_ini(tmp_path, "[DEFAULT]\n")])
    with pytest.raises(ConfigError, match=r"^option \[router\] image_uuid must be set to boot"):
        require(conf, "router", "image_uuid", "to boot appliances")
    assert require(conf, None, "api_listen", "to serve the API") == "::1"


def test_api_token_from_option_environment_or_a_private_file(tmp_path: Path):
    from astara.orchestrator.settings import api_token

    conf = load_config([])
    assert api_token(conf, environ={}) is None
    assert api_token(conf, environ={"ASTARA_API_TOKEN": "from-env"}) == "from-env"
    token_file = tmp_path / "token"
    token_file.write_text("from-file\nignored\n")
    token_file.chmod(0o600)
    conf.set_override("api_token_file", str(token_file))
    assert api_token(conf, environ={}) == "from-file"
    conf.set_override("api_token", "from-option")
    assert api_token(conf, environ={}) == "from-option"


def test_api_token_file_readable_by_others_or_missing_is_refused(tmp_path: Path):
    from astara.orchestrator.settings import api_token

    conf = load_config([])
    token_file = tmp_path / "token"
    token_file.write_text("s3cret\n")
    token_file.chmod(0o644)
    conf.set_override("api_token_file", str(token_file))
    with pytest.raises(ConfigError, match=r"readable by others.*0600"):
        api_token(conf, environ={})
    conf.set_override("api_token_file", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match=r"^option \[DEFAULT\] api_token_file: cannot read"):
        api_token(conf, environ={})
