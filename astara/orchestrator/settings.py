"""Load orchestrator.ini for every command, with one clear line for a bad or missing option."""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping, Sequence

from oslo_config import cfg

from astara.core.settings import ConfigError
from astara.orchestrator.config import list_opts, register_opts

DEFAULT_CONFIG_FILE = "/etc/astara/orchestrator.ini"


def default_config_files() -> list[str]:
    """``$ASTARA_CONFIG`` if set, else /etc/astara/orchestrator.ini when it exists."""
    configured = os.environ.get("ASTARA_CONFIG")
    if configured:
        return [configured]
    return [DEFAULT_CONFIG_FILE] if os.path.exists(DEFAULT_CONFIG_FILE) else []


def load_config(
    config_files: Sequence[str] | None = None, *, argv: Sequence[str] = ()
) -> cfg.ConfigOpts:
    """Every orchestrator option read from ``config_files`` (default: :func:`default_config_files`)
    and ``argv`` (oslo.config command-line arguments), validated now rather than at first use.
    """
    conf = cfg.ConfigOpts()
    register_opts(conf)
    files = list(default_config_files() if config_files is None else config_files)
    args = [arg for path in files for arg in ("--config-file", path)] + list(argv)
    try:
        conf(args, project="astara", default_config_files=[])
    except cfg.ConfigFilesNotFoundError as err:
        raise ConfigError(f"configuration file not found: {', '.join(err.config_files)}") from None
    except cfg.ConfigFileParseError as err:
        raise ConfigError(f"cannot parse {err.config_file}: {err.msg}") from None
    except cfg.Error as err:
        raise ConfigError(str(err).splitlines()[0]) from None
    validate(conf, files)
    return conf


def validate(conf: cfg.ConfigOpts, files: Sequence[str] = ()) -> None:
    """Read every option once so a bad value fails now, naming its group and option."""
    for group, opts in list_opts():
        section = conf[group] if group else conf
        for opt in opts:
            try:
                getattr(section, opt.dest)
            except (cfg.ConfigFileValueError, ValueError) as err:
                detail = str(err).rsplit("is not valid: ", 1)[-1]
                where = f" in {', '.join(files)}" if files else ""
                raise ConfigError(
                    f"bad value for option [{group or 'DEFAULT'}] {opt.dest}{where}: {detail}"
                ) from None


def require(conf: cfg.ConfigOpts, group: str | None, name: str, purpose: str) -> str:
    """The value of an option ``purpose`` cannot do without; ConfigError naming it if unset."""
    value = getattr(conf[group] if group else conf, name)
    if value in (None, ""):
        raise ConfigError(f"option [{group or 'DEFAULT'}] {name} must be set {purpose}")
    return str(value)


TOKEN_ENV = "ASTARA_API_TOKEN"


def api_token(conf: cfg.ConfigOpts, environ: Mapping[str, str] | None = None) -> str | None:
    """The management API token: ``api_token``, else ``$ASTARA_API_TOKEN``, else the first
    line of ``api_token_file``; None if none is set. ConfigError names an unreadable file."""
    if conf.api_token:
        return str(conf.api_token)
    env = os.environ if environ is None else environ
    if env.get(TOKEN_ENV):
        return env[TOKEN_ENV]
    path = conf.api_token_file
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as token_file:
            mode = os.fstat(token_file.fileno()).st_mode
            token = token_file.readline().strip()
    except OSError as err:
        raise ConfigError(
            f"option [DEFAULT] api_token_file: cannot read {path}: {err.strerror}"
        ) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"option [DEFAULT] api_token_file: {path} is readable by others (mode "
            f"{stat.S_IMODE(mode):o}); make it 0600"
        )
    if not token:
        raise ConfigError(f"option [DEFAULT] api_token_file: {path} is empty")
    return token
