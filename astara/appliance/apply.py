"""Apply a configuration document to this box: as a whole, or not at all.

Every step *converges* the box towards a configuration and is idempotent, so rolling back is
converging every step already touched (and the one that failed) back to the previous
configuration. The same document twice changes nothing and restarts nothing.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from astara.appliance import bird, dhcp, firewall, links, malloc, metadata_proxy, netops, routes
from astara.appliance.body import DIFFERENT, AppliedBody, SpilledBody, floating_ips_json
from astara.appliance.proxy_daemon import DEFAULT_USER, ProxyDaemon
from astara.appliance.state import StateDir, write_atomic
from astara.configdoc import (
    Configuration,
    Document,
    Network,
    ValidationError,
    document_data,
    document_json,
    parse_document,
    spill_networks_json,
    with_floating_ips,
)

LOG = logging.getLogger(__name__)


# the order ``changed`` lists the steps in
STEP_ORDER = ("links", "routes", "firewall", "dhcp", "metadata", "bird")


class PreconditionFailed(Exception):
    """If-Match named another document than the one the box runs (``args[0]``: its ETag)."""


class ResolveError(ValueError):
    """The document names NICs this box does not have; ``errors`` are 422 details."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(f"{len(errors)} unknown interface(s)")
        self.errors = errors


class _PendingError(Exception):
    """A step's transaction that ran in the background failed (the cause says why)."""

    def __init__(self, step: str) -> None:
        super().__init__(step)
        self.step = step


class ApplyError(RuntimeError):
    """A step failed; the previous configuration was put back."""

    def __init__(self, step: str, reason: str) -> None:
        super().__init__(f"applying {step} failed: {reason}; previous configuration restored")
        self.step = step
        self.reason = reason


@dataclass
class Plan:
    conf: Configuration
    ifnames: dict[str, str] = field(default_factory=dict)  # network_id -> ifname
    index: dict[str, int] = field(default_factory=dict)  # network_id -> ifindex
    links: dict[int, links.Link] = field(default_factory=dict)  # ifindex -> NIC, as resolved
    memo: dict[str, Any] = field(default_factory=dict)  # what steps derive from conf, once
    # (step, nft process, what to do once it succeeded): transactions still running
    pending: list[tuple[str, Any, Callable[[], None]]] = field(default_factory=list)
    defer: bool = False  # may a step leave its nft transaction running (apply waits for it)?
    addresses_read: bool = False  # do ``links`` hold their addresses already?
    nic_list: frozenset[tuple[int, str]] | None = None  # every interface, when known


class Appliance:
    """The box: the configuration it runs, and how to move it to another one."""

    def __init__(
        self,
        state: StateDir,
        api_port: int = 5000,
        api_address: str | None = None,
        proxy_user: str | None = DEFAULT_USER,
    ) -> None:
        self.state = state
        self.api_port = api_port
        self.api_address = api_address  # the firewall never locks the API out
        self.lock = threading.RLock()  # held across a floating-IP PUT's check and apply
        # a restarted API: other ETags (os.urandom: ``secrets`` loads hashlib, libcrypto: ~4 MB)
        self._etag_token = os.urandom(4).hex()
        self._generation = 0  # of ``current``: the ETag of the document the box runs
        self.dnsmasq = dhcp.Dnsmasq(state)
        self.bird = bird.Bird(state)
        # tenant-facing: a process of its own, asking this one who owns an address
        self.proxy = ProxyDaemon(state, self._owner_of, proxy_user)
        self.proxy.stop()  # the one an API before this one left running
        self._fw_live: firewall.FirewallInputs | None = None
        self.timings: dict[str, float] = {}  # seconds per step of the last apply
        self._done_inputs: dict[str, Any] = {}  # step -> the inputs it last converged to
        # network_id -> (model, version) of the internal networks last seen: a version
        # changes when the network's content does (render caches key on it)
        self._nets_seen: dict[str, tuple[Network, int]] = {}
        self._versions_made = 0
        self._dhcp_cache: dict[str, Any] = {}  # per network: dnsmasq lines (dhcp.render)
        # (key, the proxy's configuration line) last made; metadata-proxy.json written then
        self._proxy_line: tuple[Any, str] | None = None
        # the floating IPs' JSON and (floating, fixed) text pairs last made; the configuration
        # applied last and its pairs (what the next apply's clean-up compares with)
        self._fips_made: tuple[Any, frozenset[tuple[str, str]]] | None = None
        self._last_pairs: tuple[Configuration, frozenset[tuple[str, str]]] | None = None
        # The incremental path: what the last complete apply saw (None: take the full path).
        self._applied: AppliedBody | None = None  # the body of the document applied last
        self._spilled: SpilledBody | None = None  # or that body left in applied.json
        self._plan: Plan | None = None  # how its networks were resolved to NICs
        self._nics_seen: frozenset[tuple[int, str]] = frozenset()  # the kernel's NIC list
        self._link_watch: links.LinkWatch | None = None  # link events since the last apply
        self._compared = 0.0  # when the last PUT's sections were compared (timings)
        self._retired: list[Any] = []  # what the last apply replaced, freed by release()
        # the NICs with their addresses and every interface, read after the last answer, and
        # the watch of link and address events opened before reading them (see release())
        self._box: tuple[links.LinkWatch, list[links.Link], frozenset[tuple[int, str]]] | None
        self._box = None
        self._fw_text: tuple[firewall.FirewallInputs, str] | None = None  # the ruleset last made
        self.current: Document | None = None
        # the saved document's bytes and floating IPs: restore() applies them as a PUT's, so
        # that the same body sent again after a restart is recognised, not parsed again
        self._saved: tuple[bytes, Any] | None = None
        try:
            raw = (state.path / "applied.json").read_bytes()
            saved = json.loads(raw)
        except (FileNotFoundError, ValueError):
            saved = None
        if saved is not None:
            try:
                self.current = parse_document(saved)
                self._saved = (raw, floating_ips_json(saved))
            except ValidationError as exc:
                LOG.error("ignoring the saved configuration, it does not validate: %s", exc)

    # -- resolving networks to NICs ------------------------------------------------------------
    def resolve(self, conf: Configuration, *, strict: bool = True) -> Plan:
        """Match each network to a NIC by MAC (or by ifname when the MAC is null).

        The NICs are read from the box, or taken from what :meth:`release` read after the last
        answer if no link or address event has come since (once: this apply changes the box).
        """
        known, listed = None, None
        box, self._box = self._box, None
        if box is not None:
            watch, seen, listed = box
            if not watch.changed():
                known = [dataclasses.replace(n, addresses=list(n.addresses)) for n in seen]
            watch.close()
        nics = links.sync_names(self.state, addresses=False, known=known)  # the links step
        plan = Plan(conf, links={n.index: n for n in nics})  # reads addresses, unless known
        if known is not None and nics is known:
            plan.addresses_read, plan.nic_list = True, listed
        errors = []
        by_mac = {n.mac.lower(): n for n in nics}
        by_name = {n.ifname: n for n in nics}
        for i, net in enumerate(conf.networks):
            iface = net.interface
            nic = by_mac.get(iface.lladdr.lower()) if iface.lladdr else by_name.get(
                iface.ifname or "")  # fmt: skip
            if nic is None:
                field_name = "lladdr" if iface.lladdr else "ifname"
                errors.append({
                    "loc": ["body", "configuration", "networks", i, "interface", field_name],
                    "msg": "no interface with this " + ("MAC" if iface.lladdr else "name"),
                    "type": "unknown_interface",
                })  # fmt: skip
                continue
            if iface.mtu is not None and iface.mtu > plan.links[nic.index].max_mtu:
                errors.append({
                    "loc": ["body", "configuration", "networks", i, "interface", "mtu"],
                    "msg": f"above this NIC's maximum MTU {plan.links[nic.index].max_mtu}",
                    "type": "mtu_too_large",
                })  # fmt: skip
            plan.ifnames[net.network_id] = nic.ifname
            plan.index[net.network_id] = nic.index
        if errors and strict:
            raise ResolveError(errors)
        if errors:  # lenient (rollback): leave out the networks whose NIC has gone
            plan.conf = msgspec.structs.replace(
                conf, networks=[n for n in conf.networks if n.network_id in plan.index]
            )
        return plan

    # -- the steps -----------------------------------------------------------------------------
    def _mgmt(self) -> tuple[str | None, list[links.IPInterface]]:
        mgmt = self.state.management
        if not mgmt:
            return None, []
        return mgmt["ifname"], [ipaddress.ip_interface(mgmt["address"])]

    def step_links(self, plan: Plan) -> bool:
        if not plan.addresses_read:  # now: the firewall's nft runs meanwhile
            links.fill_addresses(plan.links.values())
        netops.enable_forwarding()
        mgmt_if, keep = self._mgmt()
        ext = plan.conf.external
        fips = [  # as text: link_changes compares "ip/prefix" strings
            f"{fip}/128" if ":" in fip else f"{fip}/32" for fip, _fixed in self._fip_pairs(plan)
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

    def step_routes(self, plan: Plan) -> bool:
        return routes.converge_routes(plan.conf, self._desired_routes(plan))

    def _desired_routes(self, plan: Plan) -> set[routes.Route]:
        if "routes" not in plan.memo:
            plan.memo["routes"] = routes.desired_routes(plan.conf)
        return plan.memo["routes"]  # type: ignore[no-any-return]

    def _firewall_inputs(self, plan: Plan) -> firewall.FirewallInputs:
        mgmt_if, mgmt_addrs = self._mgmt()
        key = f"firewall {mgmt_if} {mgmt_addrs}"
        if key not in plan.memo:
            plan.memo[key] = firewall.inputs_from(plan.conf, plan.ifnames, self.api_port,
                                                  (mgmt_if,) if mgmt_if else (),
                                                  self.api_address,
                                                  self._fip_pairs(plan),
                                                  tuple(str(a.ip) for a in mgmt_addrs))  # fmt: skip
        return plan.memo[key]  # type: ignore[no-any-return]

    def step_firewall(self, plan: Plan) -> bool:
        inputs = self._firewall_inputs(plan)
        live = self._fw_live
        if live == inputs:
            return False
        if live is not None and dataclasses.replace(live, fips=inputs.fips) == inputs:
            proc = netops.nft_start(firewall.fip_delta(live.fips, inputs.fips))
        else:
            made = self._fw_text
            if made is None or made[0] != inputs:  # the same inputs make the same ruleset
                made = self._fw_text = (inputs, firewall.render(inputs))
            proc = netops.nft_start(made[1])

        def applied() -> None:
            self._fw_live = inputs

        if plan.defer:  # nft works while the next steps render their files
            plan.pending.append(("firewall", proc, applied))
        else:
            netops.nft_wait(proc)
            applied()
        return True

    def _fip_pairs(self, plan: Plan) -> frozenset[tuple[str, str]]:
        """The (floating, fixed) text pairs of ``plan``, once; those of the last document
        whose floating-IP JSON is the same (compared in C) are not made again."""
        if "fips" not in plan.memo:
            js = plan.memo.get("fips json")
            made = self._fips_made
            if js is not None and made is not None and made[0] == js:
                pairs = made[1]
            else:
                pairs = _fip_pairs(plan.conf)
            self._fips_made = (js, pairs) if js is not None else None
            plan.memo["fips"] = pairs
        return plan.memo["fips"]  # type: ignore[no-any-return]

    def step_dhcp(self, plan: Plan) -> bool:
        files = dhcp.render(plan.conf, plan.ifnames, self.state, self._dhcp_cache,
                            self._network_versions(plan))  # fmt: skip
        return self.dnsmasq.converge(files) != "none"

    def step_bird(self, plan: Plan) -> bool:
        return self.bird.converge(bird.render(plan.conf, plan.ifnames)) != "none"

    def step_metadata(self, plan: Plan) -> bool:
        listeners = metadata_proxy.render(plan.conf, firewall.METADATA_PORT, instances=False)
        path = self.state.file("metadata-proxy.json")  # what the proxy runs, for operators
        if listeners is None:
            running = self.proxy.pid is not None
            self.proxy.stop()
            self._proxy_line = None
            path.unlink(missing_ok=True)
            return running
        # the same networks (versions), upstream and tenant make the same file: the map of
        # every address is made only to write it (the proxy asks the document, _owner_of)
        key = (tuple(self._network_versions(plan).items()), plan.conf.orchestrator,
               plan.conf.tenant_id)  # fmt: skip
        owners_changed = False
        if self._proxy_line is None or self._proxy_line[0] != key or not path.exists():
            config = metadata_proxy.render(plan.conf, firewall.METADATA_PORT)
            owners_changed = write_atomic(path, json.dumps(config, sort_keys=True))
            del config
            self._proxy_line = (key, json.dumps(listeners, sort_keys=True))
        # served when it returns (or OSError/DaemonError: a listener that cannot bind)
        return self.proxy.converge(self._proxy_line[1]) or owners_changed

    def _owner_of(self, network_id: str, address: str) -> list[str] | None:
        """[device, project] of the port owning ``address`` on ``network_id`` (the proxy's
        question; the project "" when the document does not give it), in the document the box
        runs."""
        current = self.current
        conf = current.configuration if current is not None else None
        return metadata_proxy.owner(conf, network_id, address)

    def _network_versions(self, plan: Plan) -> dict[str, int]:
        """network_id -> version of each internal network of ``plan``, in order: a version
        changes when the network's content does (thousands of hosts).

        A network is compared with the one last seen under its id, as models (~3 ms for
        5,000 hosts of a fresh parse: the dataclasses' ``__eq__`` runs in Python; the same
        object, as the incremental path shares them, at once). Once per plan.
        """
        if "versions" in plan.memo:
            return plan.memo["versions"]  # type: ignore[no-any-return]
        versions: dict[str, int] = {}
        seen: dict[str, tuple[Network, int]] = {}
        for net in plan.conf.networks_of("internal"):
            old = self._nets_seen.get(net.network_id)
            if old is not None and (old[0] is net or old[0] == net):
                version = old[1]
            else:
                self._versions_made += 1
                version = self._versions_made
            seen[net.network_id] = (net, version)
            versions[net.network_id] = version
        self._nets_seen = seen
        plan.memo["versions"] = versions
        return versions

    def step_inputs(self, plan: Plan, only: str | None = None) -> dict[str, Any]:
        """What each step depends on (``only``: that step's alone): a step whose inputs did
        not change is not run again.

        Cheap to compute and compare (frozen models), so that a one-floating-IP change runs
        only the links and firewall steps.
        """
        conf = plan.conf

        def internal() -> tuple[tuple[str, int], ...]:
            return tuple(self._network_versions(plan).items())

        def names() -> tuple[tuple[str, str], ...]:
            return tuple(sorted(plan.ifnames.items()))

        def nics() -> tuple[tuple[int, str, str], ...]:
            return tuple(sorted((n.index, n.ifname, n.mac) for n in plan.links.values()))

        makers: dict[str, Callable[[], Any]] = {
            "links": lambda: (tuple((n.network_id, n.interface) for n in conf.networks),
                              tuple(conf.floating_ips), nics(), self.state.management),
            "routes": lambda: (self._desired_routes(plan), nics()),
            "firewall": lambda: self._firewall_inputs(plan),
            # A daemon that died is started again by the next apply, even of the same document.
            "dhcp": lambda: (internal(), names(), self.dnsmasq.daemon.pid),
            "metadata": lambda: (internal(), conf.orchestrator, conf.tenant_id,
                                 self._proxy_id()),
            "bird": lambda: (internal(), conf.external, conf.asn, conf.neighbor_asn, names(),
                             self.bird.daemon.pid),
        }  # fmt: skip
        return {name: make() for name, make in makers.items() if only in (None, name)}

    # -- apply with rollback -------------------------------------------------------------------
    def steps(self) -> list[tuple[str, Callable[[Plan], bool]]]:
        """The steps in the order they run: the firewall first, so that its nft transaction
        (the longest part of a full apply) works while the others run; ``changed`` lists them
        in :data:`STEP_ORDER` all the same."""
        return [
            ("firewall", self.step_firewall),
            ("links", self.step_links),
            ("routes", self.step_routes),
            ("dhcp", self.step_dhcp),
            ("metadata", self.step_metadata),
            ("bird", self.step_bird),
        ]

    def put_body(self, raw: bytes) -> tuple[Document, list[str]]:
        """Validate and apply the body of a PUT (JSON bytes): the document and what changed.

        When the body is the one applied last but (maybe) inside its ``floating_ips`` array
        (:class:`AppliedBody`: compared byte for byte, only that array parsed), and the box is
        as that apply left it (same NICs, daemons alive), only the new floating IPs are
        validated and applied: map elements in one ``nft`` transaction and addresses by
        netlink. Otherwise the whole body is parsed and validated, and applied as by
        :meth:`apply`. Raises ValueError (not JSON, as ``json.loads`` says), configdoc's
        ValidationError, ResolveError or ApplyError.
        """
        with self.lock:
            started = self._compared = time.monotonic()
            applied = self._unspill()
            if applied is not None:
                fips = applied.floating_ips_of(raw)
                if fips is not DIFFERENT:
                    done = self._put_floating_ips(fips, applied.replaced(raw, fips), started)
                    if done is not None:
                        return done
            data = json.loads(raw)
            doc = parse_document(data)
            return doc, self.apply(doc, raw, floating_ips_json(data))

    def apply(self, doc: Document, raw: bytes | None = None, floating_ips: Any = None) -> list[str]:
        """Apply ``doc``; return the steps that changed something.

        ``raw``: the request body ``doc`` was parsed from, saved as is (no re-serializing), and
        ``floating_ips`` the JSON of its floating-IP array: both kept for the incremental path
        of the next PUT. Raises ResolveError (unknown NICs) or ApplyError (rolled back).
        """
        with self.lock:
            started = time.monotonic()
            prev = self._unspill()
            # freed by release() once the answer is sent (~30,000 objects: milliseconds)
            retired = [self.current, prev, self._plan, self._nets_seen, self._done_inputs,
                       self._fips_made, self._last_pairs, self._fw_text]  # fmt: skip
            self._applied = self._plan = None
            older, self._retired = self._retired, [retired]  # freed while nft works, if
            try:  # release() was not called after the last apply (PUTs back to back)
                return self._apply(doc, raw, floating_ips, started, prev, older)
            finally:
                older.clear()

    def _apply(
        self,
        doc: Document,
        raw: bytes | None,
        floating_ips: Any,
        started: float,
        prev: AppliedBody | None,
        older: list[Any],
    ) -> list[str]:
        """The body of :meth:`apply`, under its lock (``older``: to free while nft works)."""
        plan = self.resolve(doc.configuration)
        plan.defer = True
        plan.memo["fips json"] = floating_ips  # the body's, when known: pairs made once
        self._nics_seen = plan.nic_list if plan.nic_list is not None else _nic_list()
        old_doc = self.current or Document()
        changed: list[str] = []
        done: list[tuple[str, Callable[[Plan], bool]]] = []
        self.timings = {"resolve": time.monotonic() - started}
        if doc.configuration.orchestrator is not None:
            self.proxy.start()  # its interpreter starts while the steps before its own run
        for name, step in self.steps():
            # each step's inputs just before it: the firewall's nft starts at once
            if self.step_inputs(plan, name)[name] == self._done_inputs.get(name):
                continue  # converged with these very inputs by the last apply
            done.append((name, step))
            step_start = time.monotonic()
            try:
                if step(plan):
                    changed.append(name)
                self.timings[name] = time.monotonic() - step_start
            except Exception as exc:
                LOG.error("step %s failed (%s): rolling back", name, exc)
                self._finish(plan, quiet=True)
                self._rollback(old_doc, done)
                raise ApplyError(name, str(exc)) from exc
        step_start = time.monotonic()
        older.clear()  # the documents before the last one: nothing needs them
        try:
            self._finish(plan)
            self.timings["wait"] = time.monotonic() - step_start
        except _PendingError as exc:
            LOG.error("step %s failed (%s): rolling back", exc.step, exc.__cause__)
            self._rollback(old_doc, done)
            raise ApplyError(exc.step, str(exc.__cause__)) from exc.__cause__
        step_start = time.monotonic()
        last = self._last_pairs
        old_fips = (last[1] if last is not None and last[0] is old_doc.configuration
                    else _fip_pairs(old_doc.configuration))  # fmt: skip
        self._after(old_doc.configuration, plan, (old_fips, self._fip_pairs(plan)))
        self._last_pairs = (doc.configuration, self._fip_pairs(plan))
        self.timings["after"] = time.monotonic() - step_start
        step_start = time.monotonic()
        self._done_inputs = self.step_inputs(plan)  # with the daemons' new PIDs
        # the same bytes: the same document; without them, as models (~3 ms, 5,000 hosts)
        same = raw == prev.raw if raw is not None and prev is not None else doc == self.current
        if changed or not same:  # the request's own bytes, when it has them
            text = raw if raw is not None else document_json(doc)
            write_atomic(self.state.path / "applied.json", text)
        self.timings["save"] = time.monotonic() - step_start
        changed.sort(key=STEP_ORDER.index)
        self._set_current(doc)
        self._plan = plan
        if raw is not None and floating_ips is not None:
            self._applied = AppliedBody.of(raw, floating_ips)
        self._watch_links()
        LOG.info(
            "configuration applied in %.3fs, changed: %s (%s)",
            time.monotonic() - started,
            ", ".join(changed) or "nothing",
            " ".join(f"{k}={v * 1000:.0f}ms" for k, v in self.timings.items()),
        )
        return changed

    def _finish(self, plan: Plan, quiet: bool = False) -> None:
        """Wait for the nft transactions steps left running; raise _PendingError for a failed one
        (unless ``quiet``: a rollback follows anyway)."""
        pending, plan.pending = plan.pending, []
        for name, proc, applied in pending:
            try:
                netops.nft_wait(proc)
            except netops.NftError as exc:
                if not quiet:
                    raise _PendingError(name) from exc
            else:
                applied()

    def _rollback(self, old: Document, done: list[tuple[str, Callable[[Plan], bool]]]) -> None:
        self._fw_live = None  # force a full firewall ruleset on the way back
        self._done_inputs = {}  # and full convergence at the next apply
        plan = self.resolve(old.configuration, strict=False)
        for name, step in reversed(done):
            try:
                step(plan)
            except Exception as exc:  # keep going: restore as much as possible
                LOG.error("rollback of %s failed: %s", name, exc)

    def _after(
        self,
        old: Configuration,
        plan: Plan,
        fips: tuple[frozenset[tuple[str, str]], frozenset[tuple[str, str]]] | None = None,
    ) -> None:
        """Flush conntrack of removed floating IPs; announce new addresses by gratuitous ARP.

        Announced: the new floating IPs, and every IPv4 interface address that is new on its
        NIC (a new address, or an address on a NIC with a new MAC: a network removed and added
        back gets a new port). Hosts keep a REACHABLE neighbour entry up to 45 s without
        checking it, so without the announcement a VM whose router port was replaced sends to
        the old MAC until then (Neutron's L3 agent announces its interfaces the same way).

        ``fips``: the (floating, fixed) pairs of ``old`` and of ``plan``, when known already.
        """
        if fips is None:
            fips = (_fip_pairs(old), _fip_pairs(plan.conf))
        old_fips, new_fips = fips
        removed = sorted({fip for fip, _fixed in old_fips - new_fips})
        if removed:
            netops.flush_conntrack(removed)
        known = {
            (n.interface.lladdr, str(a.ip)) for n in old.networks for a in n.interface.addresses
        }
        ext = plan.conf.external
        for network in plan.conf.networks:
            mac = network.interface.lladdr
            if mac is None or network.network_type == "management":
                continue
            announce = [
                str(a.ip)
                for a in network.interface.addresses
                if a.ip.version == 4 and (mac, str(a.ip)) not in known
            ]
            if network is ext:
                announce += [fip for fip, _ in new_fips - old_fips if ":" not in fip]
            if announce:
                try:
                    netops.send_garp(plan.ifnames[network.network_id], mac, announce)
                except OSError as exc:
                    LOG.warning("gratuitous ARP on %s failed: %s", network.network_id, exc)

    # -- the incremental path: floating IPs only ------------------------------------------------
    def _put_floating_ips(
        self, floating_ips: Any, body: AppliedBody, started: float
    ) -> tuple[Document, list[str]] | None:
        """Apply the running document with ``floating_ips`` (the JSON of a floating-IP array)
        as its floating IPs; ``body``: the whole document's body with them.

        Only the floating IPs are validated (:func:`with_floating_ips`); when the box is as
        the last complete apply left it they are applied alone, else the document is applied
        as a whole. None if they are not valid: the caller parses the whole document, which
        reports every error with its path.
        """
        applied, current = self._applied, self.current
        assert applied is not None
        if current is None:
            return None
        doc: Document | None = current
        if floating_ips is not applied.floating_ips and floating_ips != applied.floating_ips:
            self._compared = time.monotonic()
            doc = with_floating_ips(current, floating_ips, applied.floating_ips)
        if doc is None:
            return None
        done = time.monotonic()
        changed = self._apply_floating_ips(doc, body)
        if changed is None:  # the box is not as the last apply left it: the full path
            return doc, self.apply(doc, body.raw, floating_ips)
        self.timings = {"compare": self._compared - started, "validate": done - self._compared,
                        **self.timings}  # fmt: skip
        return doc, changed

    def _watch_links(self) -> None:
        """Watch link events from now on; the NIC list the apply resolved must still hold."""
        if self._link_watch is not None:
            self._link_watch.close()
        self._link_watch = None
        try:
            watch = links.LinkWatch()
        except OSError as exc:
            LOG.warning("cannot watch link events (%s): every PUT takes the full path", exc)
            return
        if _nic_list() != self._nics_seen:  # changed between resolving and watching
            watch.close()
            return
        self._link_watch = watch

    def _box_as_left(self) -> bool:
        """Is the box as the last complete apply left it: same NICs, daemons alive, same
        management record? (Otherwise the full path converges every step.)"""
        done = self._done_inputs
        return bool(
            done
            and self._plan is not None
            and self._link_watch is not None
            and not self._link_watch.changed()
            and done["dhcp"][-1] == self.dnsmasq.daemon.pid
            and done["metadata"][-1] == self._proxy_id()
            and done["bird"][-1] == self.bird.daemon.pid
            and done["links"][-1] == self.state.management
        )

    def _apply_floating_ips(self, doc: Document, body: AppliedBody) -> list[str] | None:
        """Apply ``doc``, which differs from the current document in its floating IPs only.

        None if the box is not as the last apply left it (take the full path).
        """
        assert self.current is not None and self._plan is not None
        live = self._fw_live
        started = time.monotonic()
        self.timings = {}
        if live is None or not self._box_as_left():
            return None
        self.timings["box"] = time.monotonic() - started
        old_doc, plan = self.current, dataclasses.replace(self._plan, conf=doc.configuration)
        fw = dataclasses.replace(live, fips=_fip_pairs(doc.configuration))
        changed = []
        if fw.fips != live.fips:
            ext = doc.configuration.external
            old_ips = {fip for fip, _ in live.fips}
            new_ips = {fip for fip, _ in fw.fips}
            step = "firewall"
            try:  # the map elements first: a refused transaction changed nothing
                netops.nft_apply_small(firewall.fip_delta(live.fips, fw.fips))
                changed.append("firewall")
                step = "links"
                if ext is not None and old_ips != new_ips:
                    links.change_addresses(
                        plan.index[ext.network_id],
                        add=[_host_interface(ip) for ip in sorted(new_ips - old_ips)],
                        remove=[_host_interface(ip) for ip in sorted(old_ips - new_ips)],
                    )
                    changed.insert(0, "links")
            except Exception as exc:
                LOG.error("step %s failed (%s): rolling back", step, exc)
                self._rollback(old_doc, [("links", self.step_links),
                                         ("firewall", self.step_firewall)])  # fmt: skip
                raise ApplyError(step, str(exc)) from exc
            self._fw_live = fw
            self._done_inputs["firewall"] = fw
            links_inputs = self._done_inputs["links"]
            self._done_inputs["links"] = (links_inputs[0], tuple(doc.configuration.floating_ips),
                                          *links_inputs[2:])  # fmt: skip
        self.timings["incremental"] = time.monotonic() - started - self.timings["box"]
        after = time.monotonic()
        self._after(old_doc.configuration, plan, (live.fips, fw.fips))
        self._last_pairs = (doc.configuration, fw.fips)
        self.timings["after"] = time.monotonic() - after
        if self._applied is None or body.raw != self._applied.raw:
            after = time.monotonic()
            write_atomic(self.state.path / "applied.json", body.raw, compare=False)
            self.timings["save"] = time.monotonic() - after
        self._set_current(doc)
        self._plan, self._applied = plan, body
        LOG.info(
            "configuration applied in %.3fs (floating IPs only), changed: %s",
            time.monotonic() - started,
            ", ".join(changed) or "nothing",
        )
        return changed

    def release(self) -> None:
        """What the API runs once the answer of a PUT is sent (off the PUT's critical path).

        Frees what the last apply replaced (the previous document, its JSON and what was
        derived from them) and gives the allocator's free memory back to the system; reads
        the NICs with their addresses under a watch of link and address events opened first:
        the next full apply takes them from here instead of reading them again, if no event
        has come meanwhile (any event, ours included, and it reads them as before).
        """
        with self.lock:
            full = bool(self._retired)  # else a floating-IP change since the last call
            self._retired.clear()
            if self._applied is not None:  # its bytes are in applied.json: ~700 KB less
                self._spilled = SpilledBody.of(self.state.path / "applied.json", self._applied)
                if self._spilled is not None:
                    self._applied = None
            try:  # the networks' JSON of the answers (document_json): ~770 KB less
                spill_networks_json(self.state.run)
            except OSError as exc:
                LOG.warning("could not leave the networks' JSON in %s: %s", self.state.run, exc)
            malloc.trim()  # every apply leaves freed memory (bodies, libnftables) in the heap
            if not full or self.state.management is None:  # unclaimed: nothing is read
                return
            if self._box is not None:
                if not self._box[0].changed():
                    return
                self._box[0].close()
                self._box = None
            try:
                watch = links.LinkWatch(links.LINK_AND_ADDRESS_EVENTS)
            except OSError as exc:
                LOG.warning("cannot watch link and address events: %s", exc)
                return
            try:
                self._box = (watch, links.snapshot(), _nic_list())
            except Exception as exc:  # the next apply reads the box itself
                LOG.warning("could not read the NICs after the answer: %s", exc)
                watch.close()

    def _unspill(self) -> AppliedBody | None:
        """The body applied last, read back from ``applied.json`` if :meth:`release` left it
        there (None if that file changed since: the full path)."""
        spilled, self._spilled = self._spilled, None
        if spilled is not None:
            self._applied = spilled.load()
        return self._applied

    @property
    def etag(self) -> str:
        """The ETag of the document the box runs (changes with every other document)."""
        return f'"{self._etag_token}-{self._generation}"'

    def _set_current(self, doc: Document) -> None:
        if doc is not self.current:
            self._generation += 1
        self.current = doc

    def put_floating_ips(
        self, floating_ips: Any, if_match: str | None = None
    ) -> tuple[Document, list[str], str]:
        """Replace the floating IPs of the document the box runs: the document, what changed
        and its ETag. As a PUT of the whole document with these floating IPs (the incremental
        path when the box is as the last apply left it), without sending the rest again.

        ``if_match``: the ETag the caller believes current; PreconditionFailed if it is not.
        Raises configdoc's ValidationError (locations under ``configuration.floating_ips``),
        ApplyError.
        """
        with self.lock:
            if if_match is not None and if_match.strip() not in (self.etag, "*"):
                raise PreconditionFailed(self.etag)
            started = self._compared = time.monotonic()
            applied = self._unspill()
            body = applied.with_floating_ips(floating_ips) if applied is not None else None
            if body is not None:
                done = self._put_floating_ips(floating_ips, body, started)
                if done is not None:
                    return (*done, self.etag)
            # the running document with these floating IPs, parsed and applied as a whole (also
            # after a restart: no body is known then; this one's is the document's own JSON)
            data = document_data(self.current or Document())
            data["configuration"]["floating_ips"] = floating_ips
            doc = parse_document(data)
            raw = body.raw if body is not None else document_json(doc).encode()
            return doc, self.apply(doc, raw, floating_ips), self.etag

    def restore(self) -> None:
        """Apply the document saved before a restart (the box may have lost some of it), after
        putting the management route back in its own table (a box set up by an older version)."""
        mgmt = self.state.management
        if mgmt:
            address = ipaddress.ip_interface(mgmt["address"])
            try:
                routes.converge_management_table(mgmt["ifname"], address)
            except links.LinkError as exc:
                LOG.error("could not put the management route in its own table: %s", exc)
        saved, self.current = self.current, None
        if saved is None:
            return
        LOG.info("restoring the configuration applied before this restart")
        body, self._saved = self._saved or (None, None), None
        try:
            self.apply(saved, *body)
        except (ResolveError, ApplyError) as exc:
            LOG.error("could not restore the saved configuration: %s", exc)
        del body
        self.release()  # as after an answer: the body left in its file, the heap trimmed

    def shutdown(self) -> None:
        if self._box is not None:
            self._box[0].close()
            self._box = None
        for daemon in (self.dnsmasq.daemon, self.bird.daemon, self.proxy):
            daemon.stop()

    def _proxy_id(self) -> int | None:
        """The running proxy's PID (None if it stopped)."""
        return self.proxy.pid


_FIP_TEXT: dict[int, tuple[Any, tuple[str, str]]] = {}  # id -> (FloatingIP, its two addresses)


def _fip_pairs(conf: Configuration) -> frozenset[tuple[str, str]]:
    """The (floating, fixed) addresses of ``conf`` as text.

    The text of the items the last call saw (the same objects: an incremental change shares
    them) is not made again; formatting 2,000 addresses is a good part of a one-floating-IP
    change otherwise.
    """
    known = _FIP_TEXT
    made: dict[int, tuple[Any, tuple[str, str]]] = {}
    for fip in conf.floating_ips:
        hit = known.get(id(fip))
        if hit is None or hit[0] is not fip:
            hit = (fip, (str(fip.floating_ip), str(fip.fixed_ip)))
        made[id(fip)] = hit
    _FIP_TEXT.clear()
    _FIP_TEXT.update(made)
    return frozenset(pair for _fip, pair in made.values())


def _nic_list() -> frozenset[tuple[int, str]]:
    """Every network interface of this namespace, (index, name): one netlink dump, in C."""
    return frozenset(socket.if_nameindex())


def _host_interface(ip: str) -> links.IPInterface:
    address = ipaddress.ip_address(ip)
    return ipaddress.ip_interface(f"{address}/{address.max_prefixlen}")
