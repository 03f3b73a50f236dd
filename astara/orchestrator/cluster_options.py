"""``[coordination]``: active/active orchestrators over a coordination service.

See docs/clustering.md.
"""

from __future__ import annotations

from oslo_config import cfg

COORDINATION_OPTS = [
    cfg.BoolOpt(
        "enabled",
        default=False,
        help="Run as one member of a cluster of orchestrators: each manages the routers the "
        "hash ring over the live members gives it, and takes over those of a member that goes "
        "away. Needs url. When false, this orchestrator manages every router.",
    ),
    cfg.StrOpt(
        "url",
        help="A tooz coordination URL: kazoo://host:2181?timeout=5 (ZooKeeper), "
        "etcd3+http://host:2379?timeout=5 (etcd), redis://host:6379?timeout=5 (Redis). The "
        "timeout (seconds) is how long the service keeps a member that stopped heartbeating; "
        "it must exceed 3 x heartbeat_interval (the ownership lease).",
    ),
    cfg.StrOpt(
        "group_id",
        default="astara.orchestrator",
        help="The group the members join; change it to run several clusters on one service.",
    ),
    cfg.FloatOpt(
        "heartbeat_interval",
        default=1.0,
        min=0.1,
        help="Seconds between heartbeats (each also reads the member list). A member keeps "
        "acting for 3 intervals without contact with the service, then stops until contact is "
        "back; it adopts routers it gains 2 intervals after seeing the change.",
    ),
    cfg.StrOpt(
        "member_id",
        sample_default="<host>:<api_port>",
        help="This member's name in the group (unique in the cluster). Default: [DEFAULT] host "
        "and api_port, which also tells operators where its management API is.",
    ),
]
