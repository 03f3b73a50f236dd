"""``astara-orchestrator --config-file orchestrator.ini``: the orchestrator service.

Reads the configuration (a bad or missing option: one line naming it, exit status 2), sets up
oslo.log, starts the engine (workers, start-up resync, health, periodic resync), then the front
doors: the notification listener (RabbitMQ) and the management API. SIGTERM/SIGINT stop
everything; SIGHUP re-reads the configuration files.

Each worker process builds its own backends from the same configuration files
(:class:`ServiceBackends`): the router driver, the compute provider named by
``compute_provider`` (entry points ``astara.compute_providers``), the HTTP appliance client and
the debug-mode store.
"""

from __future__ import annotations

import importlib
import logging
import signal
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from oslo_config import cfg
from oslo_log import log as oslo_log

from astara.core.events import Resource
from astara.core.state_machine import Machine
from astara.orchestrator.engine import Engine, EngineSettings
from astara.orchestrator.worker import Backends

LOG = logging.getLogger(__name__)
PROG = "astara-orchestrator"


class WiringError(Exception):
    """A part the service needs is missing or cannot be built; the message says which."""


class BackendUnavailable(WiringError):
    """A part exists but could not reach its backend (Neutron, the database) at start."""


def front_door(dotted: str) -> Any:
    """Import ``package.module.Name`` lazily, with a clear error if it does not exist (yet)."""
    module_name, _, attr = dotted.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise WiringError(f"{dotted} is not available: {exc}") from None


def load_service_config(config_files: Sequence[str]) -> cfg.ConfigOpts:
    """Every orchestrator option, validated (ConfigError names a bad option or a retired one);
    ``transport_url`` built from the seed's deprecated rabbit_* options when they are used."""
    from astara.orchestrator.seed_options import check_retired, resolve_transport_url
    from astara.orchestrator.settings import load_config

    conf = load_config(list(config_files))
    check_retired(conf)
    resolve_transport_url(conf)
    return conf


@dataclass
class ServiceBackends:
    """Builds a worker's backends from the configuration files (picklable, for spawn)."""

    config_files: list[str]
    log_argv: list[str] = field(default_factory=list)

    def __call__(self) -> Backends:
        setup_logging(self.log_argv)
        conf = load_service_config(self.config_files)
        return build_backends(conf, in_worker=True)


def build_backends(conf: cfg.ConfigOpts, *, in_worker: bool = False) -> Backends:
    """The driver, provider, appliance client and debug store. ``in_worker``: the service has
    already built them once (and checked the database schema), so the worker skips that."""
    from astara.orchestrator.appliance_client import HttpApplianceClient
    from astara.providers import load_provider

    try:
        provider = load_provider(conf)
    except LookupError as exc:
        raise WiringError(f"option [DEFAULT] compute_provider: {exc}") from None
    driver = _build("router driver", "astara.drivers.router.RouterDriver", conf)
    debug = _build("debug-mode store", "astara.db.api.DebugStore", conf, check_schema=not in_worker)
    # A provider that hosts its appliances in memory (``fake``) answers their API itself.
    appliance = getattr(provider, "appliance_client", None) or HttpApplianceClient.from_conf(conf)
    return Backends(driver=driver, provider=provider, appliance=appliance, debug=debug)


def _build(what: str, dotted: str, conf: cfg.ConfigOpts, **options: Any) -> Any:
    from astara.core.settings import ConfigError

    try:
        return front_door(dotted).from_conf(conf, **options)
    except (WiringError, ConfigError):
        raise
    except Exception as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else ""
        raise BackendUnavailable(
            f"cannot build the {what}: {type(exc).__name__}: {first_line}"
        ) from None


def debug_machine(conf: cfg.ConfigOpts, resource: Resource) -> Machine:
    """One resource's state machine on the real backends, in the foreground.

    For ``astara-debug-router``: ``machine.send(event)``, then ``machine.step()`` returns one
    :class:`~astara.core.control.Transition` at a time (None when there is nothing to do).
    """
    backends = build_backends(conf)
    spec = EngineSettings.from_conf(conf).worker_spec(lambda: backends)
    return Machine(resource, backends, spec)


def setup_logging(argv: Sequence[str]) -> cfg.ConfigOpts:
    """oslo.log from the command line and the configuration files' logging options."""
    log_conf = cfg.ConfigOpts()
    oslo_log.register_options(log_conf)
    log_conf(list(argv), project="astara", prog=PROG, default_config_files=[])
    oslo_log.setup(log_conf, "astara")
    return log_conf


class Service:
    """The running orchestrator: the engine and its front doors."""

    def __init__(self, conf: cfg.ConfigOpts, config_files: Sequence[str], argv: Sequence[str]):
        self.conf = conf
        factory = ServiceBackends(list(config_files), list(argv))
        local = build_backends(conf)  # fails here, in one line, if a part cannot be built
        self.engine = Engine(
            factory,
            EngineSettings.from_conf(conf),
            reload=lambda: EngineSettings.from_conf(load_service_config(config_files)),
            local=local,
        )
        self.listener: Any = None
        self.api: Any = None
        self.cluster: Any = None
        if conf.coordination.enabled:
            from astara.orchestrator.cluster import Cluster

            self.cluster = Cluster.from_conf(conf, self.engine)

    def start(self) -> None:
        listener_cls = front_door("astara.orchestrator.intake.NotificationListener")
        api_cls = front_door("astara.orchestrator.api.ManagementServer")
        # Joins first (fails fast if the service cannot be reached), and before the engine
        # starts: its start-up resync adopts only what this member owns.
        if self.cluster is not None:
            from astara.coordination.base import CoordinationError

            try:
                self.cluster.start()
            except CoordinationError as exc:
                raise WiringError(f"[coordination]: {exc}") from None
        try:  # a bad transport_url or TLS option stops the start before anything runs
            listener = listener_cls(self.conf, self.engine, self.conf.transport_url)
        except ValueError as exc:
            raise WiringError(f"notification listener: {exc}") from None
        try:  # so does a management API off loopback without a token
            api = api_cls(self.conf, self.engine)
        except front_door("astara.orchestrator.api.ApiServerError") as exc:
            raise WiringError(f"management API: {exc}") from None
        self.engine.start()
        self.api = api
        self.api.start()
        self.listener = listener
        self.engine.add_health_part(
            "listener", lambda: {"ok": bool(listener.ready), **listener.counters()}
        )
        if not self.listener.start():
            LOG.warning("notification listener not consuming yet; it keeps retrying")
        LOG.info(
            "orchestrator running: %d worker processes x %d threads, provider %s",
            self.conf.num_worker_processes,
            self.conf.num_worker_threads,
            self.conf.compute_provider,
        )

    def stop(self) -> None:
        for part in (self.listener, self.api):
            if part is not None:
                try:
                    part.stop()
                except Exception:
                    LOG.exception("could not stop %s cleanly", type(part).__name__)
        self.engine.stop()
        if self.cluster is not None:
            self.cluster.stop()  # leaves the group: the others take over at once
        LOG.info("orchestrator stopped")


def _config_files(argv: Sequence[str]) -> list[str]:
    files, args = [], list(argv)
    for n, arg in enumerate(args):
        if arg == "--config-file" and n + 1 < len(args):
            files.append(args[n + 1])
        elif arg.startswith("--config-file="):
            files.append(arg.split("=", 1)[1])
    return files


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    from astara.core.settings import ConfigError
    from astara.orchestrator.seed_options import rabbit_deprecation
    from astara.orchestrator.settings import default_config_files

    try:
        # Without --config-file: $ASTARA_CONFIG, else /etc/astara/orchestrator.ini if present.
        files = _config_files(argv) or default_config_files()
        conf = load_service_config(files)
        setup_logging(argv)
        if notice := rabbit_deprecation(conf):
            LOG.warning("%s", notice)
        service = Service(conf, files, argv)
    except BackendUnavailable as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    except (ConfigError, WiringError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2
    except cfg.Error as exc:
        print(f"{PROG}: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGHUP, lambda *_: service.engine.reload_config())
    try:
        service.start()
    except WiringError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        service.stop()
        return 2
    except Exception as exc:
        LOG.exception("orchestrator failed to start")
        print(f"{PROG}: could not start: {exc}", file=sys.stderr)
        service.stop()
        return 1
    stop.wait()
    service.stop()
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
