"""Cluster membership through a coordination service (DESIGN §2, docs/clustering.md).

:class:`~astara.coordination.base.Coordinator` is the small interface the orchestrator uses
(join a group with a heartbeat, read the live members, leave); :mod:`.tooz_backend` implements
it over tooz (ZooKeeper, etcd3, Redis...), :mod:`.fake` in memory for unit tests;
:mod:`.membership` runs the heartbeat loop and feeds :class:`astara.core.ownership.Ownership`.
"""
