"""The steps of an apply, each a small object: what it wants from the document (``wants``, a
hashable value derived from the plan alone) and how it converges the box to that
(``converge``: idempotent; True if it changed something).

The apply runs a step only when its wants hash otherwise than at its last success
(:class:`.memo.Memo`), so the wants name everything the step's result depends on, a
daemon's PID included (a daemon that died is started again by the next apply, even of the
same document).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from astara.appliance import bird, dhcp, firewall, links, metadata_proxy, netlink, netops, routes
from astara.appliance.apply.derive import (
    FipPairs,
    NetworkVersions,
    Pairs,
    frozen_interface,
    frozen_orchestrator,
    frozen_record,
    host_interface,
)
from astara.appliance.apply.plan import Plan
from astara.appliance.proxy_daemon import ProxyDaemon
from astara.appliance.state import StateDir, write_atomic


@dataclass(frozen=True)
class Management:
    """The management NIC and address astara-configure-management recorded (may change at
    any time: read at every use, parsed again only when the record changed)."""

    ifname: str | None = None
    addresses: tuple[links.IPInterface, ...] = ()
    record: Hashable = None  # the record as a hashable value

    @classmethod
    def of(cls, record: dict[str, str] | None) -> Management:
        if not record:
            return cls()
        return cls(record["ifname"], (ipaddress.ip_interface(record["address"]),),
                   frozen_record(record))  # fmt: skip


@dataclass
class Box:
    """What every step may ask: the state directory and what is derived from the document."""

    state: StateDir
    fips: FipPairs = field(default_factory=FipPairs)
    versions: NetworkVersions = field(default_factory=NetworkVersions)
    _mgmt: tuple[dict[str, str] | None, Management] = (None, Management())

    def mgmt(self) -> Management:
        record = self.state.management  # the same object while the file is unchanged
        if record is not self._mgmt[0]:
            self._mgmt = (record, Management.of(record))
        return self._mgmt[1]

    @staticmethod
    def nics(plan: Plan) -> Hashable:
        if "nics" not in plan.memo:
            plan.memo["nics"] = tuple(sorted((n.index, n.ifname, n.mac)
                                             for n in plan.links.values()))  # fmt: skip
        return plan.memo["nics"]  # type: ignore[no-any-return]

    @staticmethod
    def names(plan: Plan) -> Hashable:
        if "names" not in plan.memo:
            plan.memo["names"] = tuple(sorted(plan.ifnames.items()))
        return plan.memo["names"]  # type: ignore[no-any-return]

    @staticmethod
    def once(plan: Plan, key: Hashable, make: Callable[[], Hashable]) -> int:
        """The hash of ``make()``, made once per plan (what a step wants of the document and
        its NICs; hashed again at every memo check otherwise)."""
        key = ("hash of", key)
        found: int | None = plan.memo.get(key)
        if found is None:
            found = plan.memo[key] = hash(make())
        return found


class Step:
    """One part of the box; subclasses say what they want and converge to it."""

    name: ClassVar[str]

    def __init__(self, box: Box) -> None:
        self.box = box

    def wants(self, plan: Plan) -> Hashable:
        raise NotImplementedError

    def converge(self, plan: Plan) -> bool:
        raise NotImplementedError


class Links(Step):
    """Addresses, MTU, state and description of every NIC; floating IPs on the external one."""

    name = "links"

    def wants(self, plan: Plan) -> Hashable:
        interfaces = self.box.once(plan, "links", lambda: (tuple(
            (n.network_id, frozen_interface(n.interface)) for n in plan.conf.networks),
            self.box.nics(plan)))  # fmt: skip
        return interfaces, self.box.fips.of_plan(plan), self.box.mgmt().record

    def converge(self, plan: Plan) -> bool:
        if not plan.addresses_read:  # now: the firewall's nft runs meanwhile
            links.fill_addresses(plan.links.values())
        netops.enable_forwarding()
        mgmt = self.box.mgmt()
        mgmt_if, keep = mgmt.ifname, mgmt.addresses
        ext = plan.conf.external
        fips = [  # as text: link_changes compares "ip/prefix" strings
            f"{fip}/128" if ":" in fip else f"{fip}/32" for fip, _ in self.box.fips.of_plan(plan)
        ]
        by_index = plan.links
        batch: list[str] = []
        for net in plan.conf.networks:
            iface = net.interface
            addrs: list[links.IPInterface | str] = list(iface.addresses)
            if ext is not None and net.network_id == ext.network_id:
                addrs += fips  # floating IPs live on the external NIC (ARP, GARP, DNAT)
            batch += links.link_changes(
                by_index[plan.index[net.network_id]], addresses=addrs, mtu=iface.mtu,
                up=iface.state == "up", description=iface.description, keep=keep)  # fmt: skip
        used = set(plan.index.values())
        for link in by_index.values():  # NICs no network uses any more lose their addresses
            if link.index not in used and link.ifname != mgmt_if:
                batch += links.link_changes(link, addresses=[], mtu=None, up=link.up,
                                            description="", keep=keep)  # fmt: skip
        links.ip_batch(batch)
        return bool(batch)

    @staticmethod
    def change_floating_ips(plan: Plan, old: Pairs, new: Pairs) -> bool:
        """Only the floating IPs' addresses on the external NIC, by netlink (no ``ip``): from
        those of ``old`` to those of ``new``."""
        ext = plan.conf.external
        old_ips, new_ips = {fip for fip, _ in old}, {fip for fip, _ in new}
        if ext is None or old_ips == new_ips:
            return False
        netlink.change_addresses(
            plan.index[ext.network_id],
            add=[host_interface(ip) for ip in sorted(new_ips - old_ips)],
            remove=[host_interface(ip) for ip in sorted(old_ips - new_ips)],
        )
        return True


class Routes(Step):
    """Our routes in the main table.

    It wants the NICs' addresses too: the kernel deletes the routes through an address that
    goes (a gateway moved to another address of the same subnet), so they are converged again.
    """

    name = "routes"

    def wants(self, plan: Plan) -> Hashable:
        return self.box.once(plan, "routes", lambda: (
            frozenset(self.desired(plan)), self.box.nics(plan),
            tuple((n.network_id, tuple(n.interface.addresses)) for n in plan.conf.networks),
        ))  # fmt: skip

    def desired(self, plan: Plan) -> set[routes.Route]:
        if "routes" not in plan.memo:
            plan.memo["routes"] = routes.desired_routes(plan.conf)
        return plan.memo["routes"]  # type: ignore[no-any-return]

    def converge(self, plan: Plan) -> bool:
        return routes.converge_routes(plan.conf, self.desired(plan))


class Firewall(Step):
    """The nftables ruleset: a whole transaction, or map elements when only floating IPs
    changed. Its nft may run on while the next steps do (``plan.defer``)."""

    name = "firewall"

    def __init__(self, box: Box, api_port: int, api_address: str | None) -> None:
        super().__init__(box)
        self.api_port = api_port
        self.api_address = api_address  # the firewall never locks the API out
        self.live: firewall.FirewallInputs | None = None  # what the kernel runs
        self.text: tuple[firewall.FirewallInputs, str] | None = None  # the ruleset last made

    def inputs(self, plan: Plan) -> firewall.FirewallInputs:
        """What the ruleset is made of, once per plan (and management record)."""
        mgmt = self.box.mgmt()
        key = ("firewall", mgmt.record)  # the management record may change any time
        if key not in plan.memo:
            plan.memo[key] = firewall.inputs_from(
                plan.conf, plan.ifnames, self.api_port, (mgmt.ifname,) if mgmt.ifname else (),
                self.api_address, self.box.fips.of_plan(plan),
                tuple(str(a.ip) for a in mgmt.addresses))  # fmt: skip
        return plan.memo[key]  # type: ignore[no-any-return]

    def wants(self, plan: Plan) -> Hashable:
        inputs = self.inputs(plan)  # all but the floating IPs hashed once per plan
        rest = self.box.once(plan, ("firewall", self.box.mgmt().record),
                             lambda: dataclasses.replace(inputs, fips=frozenset()))  # fmt: skip
        return rest, inputs.fips

    def converge(self, plan: Plan) -> bool:
        inputs = self.inputs(plan)
        live = self.live
        if live == inputs:
            return False
        if live is not None and dataclasses.replace(live, fips=inputs.fips) == inputs:
            proc = netops.nft_start(firewall.fip_delta(live.fips, inputs.fips))
        else:
            made = self.text
            if made is None or made[0] != inputs:  # the same inputs make the same ruleset
                made = self.text = (inputs, firewall.render(inputs))
            proc = netops.nft_start(made[1])

        def applied() -> None:
            self.live = inputs

        if plan.defer:  # nft works while the next steps render their files
            plan.pending.append((self.name, proc, applied))
        else:
            netops.nft_wait(proc)
            applied()
        return True

    def change_floating_ips(self, plan: Plan) -> bool:
        """Only the floating-IP map elements of ``plan``, in one small transaction (a refused
        one changed nothing), from the ruleset the kernel runs (``live``, not None)."""
        live = self.live
        assert live is not None
        pairs = self.box.fips.of_plan(plan)
        wanted = plan.memo[("firewall", self.box.mgmt().record)] = dataclasses.replace(
            live, fips=pairs)  # fmt: skip
        if live.fips == pairs:
            return False
        netops.nft_apply_small(firewall.fip_delta(live.fips, pairs))
        self.live = wanted
        return True


class Dhcp(Step):
    """dnsmasq for the internal networks."""

    name = "dhcp"

    def __init__(self, box: Box) -> None:
        super().__init__(box)
        self.dnsmasq = dhcp.Dnsmasq(box.state)
        self._lines: dict[str, Any] = {}  # per network: dnsmasq lines (dhcp.render's cache)

    def wants(self, plan: Plan) -> Hashable:
        made = self.box.once(plan, "dhcp", lambda: (self.box.versions.internal(plan),
                                                    self.box.names(plan)))  # fmt: skip
        return made, self.dnsmasq.daemon.pid

    def converge(self, plan: Plan) -> bool:
        files = dhcp.render(plan.conf, plan.ifnames, self.box.state, self._lines,
                            self.box.versions.of(plan))  # fmt: skip
        return self.dnsmasq.converge(files) != "none"


class Metadata(Step):
    """The metadata proxy: its own process, given its listeners; the map of every address
    is written to a file for operators (the proxy asks the API who owns an address)."""

    name = "metadata"

    def __init__(self, box: Box, proxy: ProxyDaemon) -> None:
        super().__init__(box)
        self.proxy = proxy
        self._line: tuple[Any, str] | None = None  # (key, the proxy's configuration line)

    def wants(self, plan: Plan) -> Hashable:
        return self._content(plan), self.proxy.pid

    def _content(self, plan: Plan) -> int:
        """What the proxy's files are made of: the same networks (versions), upstream and
        tenant make the same files."""
        conf = plan.conf
        return self.box.once(plan, "metadata", lambda: (
            self.box.versions.internal(plan), frozen_orchestrator(conf.orchestrator),
            conf.tenant_id))  # fmt: skip

    def converge(self, plan: Plan) -> bool:
        listeners = metadata_proxy.render(plan.conf, firewall.METADATA_PORT, instances=False)
        path = self.box.state.file("metadata-proxy.json")  # what the proxy runs, for operators
        if listeners is None:
            running = self.proxy.pid is not None
            self.proxy.stop()
            self._line = None
            path.unlink(missing_ok=True)
            return running
        key = self._content(plan)
        owners_changed = False
        if self._line is None or self._line[0] != key or not path.exists():
            config = metadata_proxy.render(plan.conf, firewall.METADATA_PORT)
            owners_changed = write_atomic(path, json.dumps(config, sort_keys=True))
            del config
            self._line = (key, json.dumps(listeners, sort_keys=True))
        # served when it returns (or OSError/DaemonError: a listener that cannot bind)
        return self.proxy.converge(self._line[1]) or owners_changed


class Bird(Step):
    """bird: router advertisements and BGP."""

    name = "bird"

    def __init__(self, box: Box) -> None:
        super().__init__(box)
        self.bird = bird.Bird(box.state)

    def wants(self, plan: Plan) -> Hashable:
        conf = plan.conf
        made = self.box.once(plan, "bird", lambda: (
            self.box.versions.internal(plan), self.box.versions.external(plan), conf.asn,
            conf.neighbor_asn, self.box.names(plan)))  # fmt: skip
        return made, self.bird.daemon.pid

    def converge(self, plan: Plan) -> bool:
        return self.bird.converge(bird.render(plan.conf, plan.ifnames)) != "none"
