"""Every option of ``astara-orchestrator`` (oslo.config), with the seed install guide's names.

An operator's ``orchestrator.ini`` from the seed install guide keeps working: option names and
groups are the original ones, with their old spellings as deprecated aliases; the seed's
options that are gone stop the start naming their replacement (:mod:`seed_options`). The sample file
``etc/orchestrator.ini.sample`` is generated from :func:`list_opts` by
``oslo-config-generator --namespace astara.orchestrator``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

from oslo_config import cfg

from astara.orchestrator.cluster_options import COORDINATION_OPTS
from astara.orchestrator.seed_options import LEGACY_RABBIT_OPTS
from astara.orchestrator.seed_options import register_opts as register_seed_opts

DEFAULT_OPTS = [
    cfg.StrOpt(
        "transport_url",
        secret=True,
        default="rabbit://guest:guest@127.0.0.1:5672/",
        help="RabbitMQ Neutron publishes its notifications on, as in neutron.conf: "
        "rabbit://user:pass@host:5672[,user:pass@host2:5672]/vhost[?ssl=1]. TLS options are in "
        "[oslo_messaging_rabbit].",
    ),
    cfg.StrOpt(
        "host",
        sample_default="<hostname>",
        help="Name of this orchestrator host; used in its RabbitMQ pool and cluster membership.",
    ),
    cfg.StrOpt(
        "state_dir",
        default="/var/lib/astara",
        help="Directory for the orchestrator's state (default SQLite database, locks).",
    ),
    cfg.StrOpt(
        "management_prefix",
        default="fdca:3ba5:a17a:acda::/64",
        help="IPv6 prefix of the management network appliances are reached on.",
    ),
    cfg.StrOpt(
        "management_network_id",
        deprecated_name="management_net_id",
        help="Neutron network id of the management network.",
    ),
    cfg.StrOpt(
        "ssh_public_key",
        default="/etc/astara/astara.pub",
        help="Public key installed into appliances for operator ssh access.",
    ),
    cfg.IntOpt(
        "num_worker_processes",
        default=16,
        min=1,
        help="Number of worker processes; resources are sharded across them by id hash "
        "(see shard_by).",
    ),
    cfg.StrOpt(
        "shard_by",
        default="resource",
        choices=[
            ("resource", "hash of the resource id: one tenant's routers spread over every worker"),
            ("tenant", "hash of the tenant id (the 2016 behaviour): one tenant, one worker"),
        ],
        help="What picks a resource's worker process. With 'tenant', a tenant creating many "
        "routers at once has them worked by one process's num_worker_threads threads only.",
    ),
    cfg.IntOpt(
        "num_worker_threads",
        default=4,
        min=1,
        help="Threads per worker process; each works one resource at a time.",
    ),
    cfg.IntOpt(
        "health_check_period",
        default=60,
        min=1,
        help="Seconds between health-check POLLs sent to every resource.",
    ),
    cfg.IntOpt(
        "stats_period",
        default=300,
        min=0,
        help="Seconds between reads of every configured appliance's traffic counters (GET "
        "/v1/system/stats), shown per interface in /metrics and 'astara-ctl show' (0: never).",
    ),
    cfg.IntOpt(
        "resync_period",
        default=600,
        min=0,
        help="Seconds between full resyncs of all resources from Neutron (0 disables; the "
        "resync at start-up always runs).",
    ),
    cfg.IntOpt(
        "boot_timeout",
        default=600,
        min=1,
        help="Seconds an appliance may take from boot to answering its API before the boot "
        "counts as failed.",
    ),
    cfg.IntOpt(
        "hotplug_timeout",
        default=60,
        min=1,
        help="Seconds an appliance may take to show a NIC hot-plugged into it (a VM sees a "
        "hot-attached interface a moment after Nova's attach returns) before the appliance "
        "is restarted on its ports instead.",
    ),
    cfg.IntOpt(
        "reboot_error_threshold",
        default=5,
        min=1,
        help="Failed boots in a row after which a resource goes to ERROR.",
    ),
    cfg.IntOpt(
        "error_state_cooldown",
        default=30,
        min=0,
        help="Seconds a resource stays in ERROR before ClearError lets it try again.",
    ),
    cfg.IntOpt(
        "alive_timeout",
        default=3,
        min=1,
        help="Seconds to wait for an appliance's API to answer an aliveness check.",
    ),
    cfg.IntOpt(
        "config_timeout",
        default=90,
        min=1,
        help="Seconds to wait for an appliance to apply a configuration document.",
    ),
    cfg.IntOpt(
        "max_retries",
        default=3,
        min=0,
        help="Times a failed appliance configuration push is retried (each after the requeue "
        "backoff) before the resource is marked for restart.",
    ),
    cfg.FloatOpt(
        "requeue_backoff_base",
        default=1.0,
        min=0.01,
        help="Seconds before a resource whose step failed (boot, configuration, health check) "
        "is worked again, without waiting for an event or the health sweep. Doubles after each "
        "failure in a row, with jitter (between half and all of the nominal delay), up to "
        "requeue_backoff_cap; starts over once the resource is configured.",
    ),
    cfg.FloatOpt(
        "requeue_backoff_cap",
        default=30.0,
        min=0.01,
        help="The longest wait, in seconds, between retries of a resource whose steps keep "
        "failing (see requeue_backoff_base).",
    ),
    cfg.IntOpt(
        "deleted_memory",
        default=3600,
        min=0,
        help="Seconds a deleted resource is remembered so late events do not resurrect it.",
    ),
    cfg.IntOpt(
        "transition_history",
        default=50,
        min=1,
        help="Number of state transitions kept per resource for operators to inspect.",
    ),
    cfg.StrOpt(
        "api_listen",
        default="::1",
        help="Address the management HTTP API listens on.",
    ),
    cfg.PortOpt("api_port", default=44250, help="Port of the management HTTP API."),
    cfg.StrOpt(
        "api_token",
        secret=True,
        help="When set, management API requests must carry 'X-Auth-Token: <api_token>'. "
        "Prefer api_token_file or ASTARA_API_TOKEN (a config file is often world-readable).",
    ),
    cfg.StrOpt(
        "orchestrator_address",
        help="Address appliances' metadata proxies forward to (the orchestrator's management "
        "address); derived from management_prefix (::1) when unset.",
    ),
    cfg.PortOpt("metadata_port", default=9697, help="Port of the orchestrator's metadata service."),
    cfg.StrOpt(
        "neutron_endpoint",
        help="Neutron API endpoint (e.g. http://127.0.0.1:9696) to use instead of the Keystone "
        "catalog; with auth_type = none this talks to a noauth neutron-server.",
    ),
    cfg.StrOpt(
        "compute_provider",
        default="nova",
        help="Where appliances run: 'nova' (real clouds) or 'netns' (one Linux host). Loaded "
        "from the 'astara.compute_providers' entry points.",
    ),
]

ROUTER_OPTS = [
    cfg.StrOpt("image_uuid", help="Glance image of the router appliance."),
    cfg.StrOpt("instance_flavor", help="Nova flavor id of the router appliance."),
    cfg.PortOpt(
        "mgt_service_port",
        default=5000,
        help="Port of the appliance REST API on its management address.",
    ),
]

# Safety of the orchestrator's front doors and destructive paths (issue 10, part C).
SAFETY_OPTS = [
    cfg.IntOpt(
        "intake_max_message_bytes",
        default=1_048_576,
        min=1024,
        help="Largest notification body (bytes) the intake decodes; a larger one is counted "
        "as dropped.too_large and acked (or dead-lettered) without being parsed.",
    ),
    cfg.StrOpt(
        "intake_dead_letter_exchange",
        help="When set, notifications the intake cannot handle (malformed, too large, too "
        "deep, failing) are rejected to this RabbitMQ exchange (the pool queue is declared with "
        "x-dead-letter-exchange) instead of being acked and discarded. Changing it on a running "
        "cloud needs the old pool queue (astara-orchestrator.<host>) deleted first.",
    ),
    cfg.BoolOpt(
        "accept_bus_commands",
        default=False,
        help="Accept 'astara.command' operator commands published on the notification bus "
        "(anyone who can publish to Neutron's exchange could send them). Off: they are "
        "counted as dropped.bus_commands_disabled and logged; use astara-ctl (the management "
        "API) instead.",
    ),
    cfg.FloatOpt(
        "resync_max_delete_fraction",
        default=0.5,
        min=0.0,
        max=1.0,
        help="A resync that would delete more than this share of the known routers at once "
        "(or whose listing from Neutron is empty) deletes nothing and logs why; "
        "'astara-ctl resync --force' (POST /v1/resync with force) overrides it once.",
    ),
    cfg.IntOpt(
        "drift_check_period",
        default=300,
        min=0,
        help="Seconds between checks that a configured appliance still has the document "
        "Neutron's current state gives (digest of the last pushed document against a fresh "
        "one); a difference is pushed. Repairs changes whose notifications were lost (0 "
        "disables).",
    ),
    cfg.StrOpt(
        "api_token_file",
        help="File holding the management API token (first line; keep it 0600). Used when "
        "api_token is unset; the environment variable ASTARA_API_TOKEN is read before it. "
        "Required (one of the three) when api_listen is not a loopback address.",
    ),
]

DATABASE_OPTS = [
    cfg.StrOpt(
        "connection",
        secret=True,
        help="SQLAlchemy URL of the orchestrator database; default: SQLite in state_dir "
        "(e.g. mysql+pymysql://astara:pw@host/astara, postgresql+psycopg://...).",
    ),
]

# The names and meaning of oslo.messaging's, so an operator copies the section from
# neutron.conf; the intake speaks AMQP through kombu, not through oslo.messaging.
RABBIT_OPTS = [
    cfg.BoolOpt(
        "ssl",
        default=False,
        help="Connect to RabbitMQ over TLS (also turned on by '?ssl=1' in transport_url). The "
        "broker's certificate is always verified, against ssl_ca_file or the system's CAs; its "
        "host name is not checked (as oslo.messaging does not).",
    ),
    cfg.StrOpt(
        "ssl_ca_file",
        help="CA certificate(s) (PEM) the broker's certificate must chain to; unset: the "
        "system's CA store.",
    ),
    cfg.StrOpt(
        "ssl_cert_file",
        help="Client certificate (PEM) for brokers that require one.",
    ),
    cfg.StrOpt("ssl_key_file", help="Private key (PEM) of ssl_cert_file."),
]

# -- [appliance_tls]: mutual TLS between the orchestrator and its appliances ----------------------
# (astara/providers/appliance_tls.py reads them; docs/operators.md "Appliance certificates")
APPLIANCE_TLS_OPTS = [
    cfg.StrOpt(
        "ca_file",
        help="CA certificate (PEM) every appliance's server certificate must chain to. It is "
        "also given to each appliance as the only CA its clients' certificates may chain to.",
    ),
    cfg.StrOpt(
        "ca_key_file",
        secret=True,
        help="Private key (PEM, unencrypted, EC P-256, mode 0600) of ca_file; the compute "
        "provider issues each appliance its own server certificate with it at boot.",
    ),
    cfg.StrOpt(
        "cert_file",
        help="The orchestrator's client certificate (PEM, extended key usage clientAuth), "
        "signed by ca_file; appliances accept only clients that present it.",
    ),
    cfg.StrOpt("key_file", secret=True, help="Private key (PEM, mode 0600) of cert_file."),
    cfg.IntOpt(
        "server_cert_days",
        default=365,
        min=1,
        help="Days an appliance's server certificate is valid; an appliance gets a new one "
        "whenever it is booted or rebuilt.",
    ),
    cfg.BoolOpt(
        "plain_http",
        default=False,
        help="Opt out of mutual TLS: talk to appliances over plain HTTP, unauthenticated "
        "(anyone on the management network can then configure them). Logged at WARNING at "
        "start and once per appliance.",
    ),
]

# BGP of the appliances (issue 15): each announces its router's tenant IPv6 prefixes to the
# external IPv6 subnet's gateway. Neutron has no per-router ASN to override them with.
BGP_OPTS = [
    cfg.IntOpt(
        "asn",
        default=64512,
        min=1,
        max=4294967295,
        help="Autonomous system number the appliances speak BGP as (the seed's fixed 64512 by "
        "default). Each announces its router's tenant IPv6 prefixes to the external IPv6 "
        "subnet's gateway.",
    ),
    cfg.IntOpt(
        "neighbor_asn",
        default=64512,
        min=1,
        max=4294967295,
        help="Autonomous system number of the BGP peer: the external IPv6 subnet's gateway, "
        "which must accept sessions from the appliances' external addresses. Equal to asn: "
        "iBGP.",
    ),
]

GROUPS: dict[str | None, Sequence[cfg.Opt]] = {
    None: [*DEFAULT_OPTS, *SAFETY_OPTS, *BGP_OPTS],
    "router": ROUTER_OPTS,
    "database": DATABASE_OPTS,
    "oslo_messaging_rabbit": [*RABBIT_OPTS, *LEGACY_RABBIT_OPTS],
    "appliance_tls": APPLIANCE_TLS_OPTS,
    "coordination": COORDINATION_OPTS,
}


def register_opts(conf: cfg.ConfigOpts) -> None:
    """Register every orchestrator option on ``conf`` (idempotent)."""
    for group, opts in GROUPS.items():
        conf.register_opts(list(opts), group=group)
    register_seed_opts(conf)


def list_opts() -> list[tuple[str | None, Iterable[cfg.Opt]]]:
    """For oslo-config-generator (entry point ``oslo.config.opts: astara.orchestrator``)."""
    return [(group, list(itertools.chain(opts))) for group, opts in GROUPS.items()]
