"""The seed install guide's option names that are not Astara's own any more.

Two kinds (docs/operators.md, "Options from the seed install guide"):

- ``[oslo_messaging_rabbit] rabbit_host(s) / rabbit_port / rabbit_userid / rabbit_password /
  rabbit_virtual_host`` still work, deprecated: when any is set, :func:`resolve_transport_url`
  builds ``[DEFAULT] transport_url`` from them (as oslo.messaging did before it dropped them)
  and the service logs, once (:func:`rabbit_deprecation`), the ``transport_url`` line to
  write instead. Setting both is
  refused, since one of the two would silently lose.
- Retired options (:data:`RETIRED`) had no effect here; they are still parsed so that a file
  setting one stops the start, with a message naming each and what replaces it, instead of
  being accepted and ignored. They are not in the generated sample.
"""

from __future__ import annotations

import urllib.parse

from oslo_config import cfg

from astara.core.settings import ConfigError

RABBIT_GROUP = "oslo_messaging_rabbit"
DEFAULT_RABBIT_PORT = 5672
_DEPRECATED = " Deprecated: set [DEFAULT] transport_url instead."

LEGACY_RABBIT_OPTS = [
    cfg.StrOpt(
        "rabbit_host",
        help="RabbitMQ host, when rabbit_hosts is unset. Used only when transport_url is "
        "not set: the URL is built from the rabbit_* options." + _DEPRECATED,
    ),
    cfg.PortOpt(
        "rabbit_port",
        help=f"Port of rabbit_host, and of rabbit_hosts entries without one (default "
        f"{DEFAULT_RABBIT_PORT})." + _DEPRECATED,
    ),
    cfg.ListOpt(
        "rabbit_hosts",
        help="RabbitMQ brokers, 'host[:port]' each, tried in turn." + _DEPRECATED,
    ),
    cfg.StrOpt("rabbit_userid", help="RabbitMQ user (default guest)." + _DEPRECATED),
    cfg.StrOpt(
        "rabbit_password",
        secret=True,
        help="Password of rabbit_userid (default guest)." + _DEPRECATED,
    ),
    cfg.StrOpt("rabbit_virtual_host", help="RabbitMQ virtual host (default /)." + _DEPRECATED),
]

# (group, option) -> why it is gone and what to do instead.
RETIRED: dict[tuple[str | None, str], str] = {
    (None, "interface_driver"): "appliances are plugged into their networks by the compute "
    "provider; choose it with [DEFAULT] compute_provider and delete this line",
    (None, "management_subnet_id"): "the management network is [DEFAULT] "
    "management_network_id (management_net_id) with management_prefix; delete this line",
    (None, "external_network_id"): "each router's external network is its Neutron gateway "
    "(external_gateway_info); delete this line",
    (None, "external_subnet_id"): "each router's external subnets are those of its Neutron "
    "gateway; delete this line",
    (None, "external_prefix"): "each router's external prefixes are those of its Neutron "
    "gateway; delete this line",
    (None, "provider_rules_path"): "operator-wide firewall rules are not pushed to appliances "
    "(not implemented); delete this line",
    ("keystone_authtoken", "auth_uri"): "keystonemiddleware's public endpoint; the "
    "orchestrator authenticates with [keystone_authtoken] auth_url; delete this line",
}


def register_opts(conf: cfg.ConfigOpts) -> None:
    """Register the deprecated rabbit_* options and the retired ones (so they are parsed)."""
    conf.register_opts(LEGACY_RABBIT_OPTS, group=RABBIT_GROUP)
    for group, name in RETIRED:
        conf.register_opt(cfg.StrOpt(name), group=group)


def check_retired(conf: cfg.ConfigOpts) -> None:
    """ConfigError naming every retired option set and what replaces it."""
    found = []
    for group, name in RETIRED:
        value = getattr(conf[group] if group else conf, name)
        if value is None:
            continue
        found.append(f"  [{group or 'DEFAULT'}] {name}: {RETIRED[(group, name)]}")
    if found:
        raise ConfigError("retired options are set:\n" + "\n".join(found))


def legacy_transport_url(conf: cfg.ConfigOpts) -> str | None:
    """``transport_url`` built from the rabbit_* options; None when none of them is set."""
    group = conf[RABBIT_GROUP]
    if all(group[opt.dest] is None for opt in LEGACY_RABBIT_OPTS):
        return None
    port = group.rabbit_port or DEFAULT_RABBIT_PORT
    hosts = group.rabbit_hosts or [group.rabbit_host or "127.0.0.1"]
    user = urllib.parse.quote(group.rabbit_userid or "guest", safe="")
    password = urllib.parse.quote(group.rabbit_password or "guest", safe="")
    netloc = ",".join(
        f"{user}:{password}@{host if _has_port(host) else f'{host}:{port}'}" for host in hosts
    )
    vhost = urllib.parse.quote(group.rabbit_virtual_host or "/", safe="")
    return f"rabbit://{netloc}/{vhost}"


def _has_port(host: str) -> bool:
    return host.rpartition(":")[2].isdigit() and (not host.startswith("[") or "]:" in host)


def resolve_transport_url(conf: cfg.ConfigOpts) -> None:
    """Set ``transport_url`` from the rabbit_* options when they are used; ConfigError if
    ``transport_url`` is set as well."""
    url = legacy_transport_url(conf)
    if url is None:
        return
    where = conf.get_location("transport_url")
    if where is not None and where.location is not cfg.Locations.opt_default:
        raise ConfigError(
            "both [DEFAULT] transport_url and [oslo_messaging_rabbit] rabbit_* are set: "
            "delete the rabbit_* options (transport_url is used by neutron.conf too)"
        )
    conf.set_override("transport_url", url)


def rabbit_deprecation(conf: cfg.ConfigOpts) -> str | None:
    """The line to log when the transport URL comes from the rabbit_* options, else None."""
    url = legacy_transport_url(conf)
    if url is None:
        return None
    return (
        "[oslo_messaging_rabbit] rabbit_* options are deprecated: the transport URL was "
        f"built from them; set [DEFAULT] transport_url = {redact(url)} instead"
    )


def redact(url: str) -> str:
    """``url`` with every password replaced by ``***``."""
    parsed = urllib.parse.urlsplit(url)
    hosts = []
    for host in parsed.netloc.split(","):
        credentials, at, address = host.rpartition("@")
        user = credentials.partition(":")[0]
        hosts.append(f"{user}:***@{address}" if at else address)
    return urllib.parse.urlunsplit(parsed._replace(netloc=",".join(hosts)))
