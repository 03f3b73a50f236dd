"""Load orchestrator.ini for every command, with one clear line for a bad or missing option."""

from __future__ import annotations

import os
from collections.abc import Sequence

from oslo_config import cfg

from astara.orchestrator.config import list_opts, register_opts

DEFAULT_CONFIG_FILE = "/etc/astara/orchestrator.ini"


class ConfigError(Exception):
    """The configuration is unusable; the message is one line naming the file and option."""


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
