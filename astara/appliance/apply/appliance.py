"""Apply a configuration document to this box: as a whole, or not at all.

Every step (:mod:`.steps`) *converges* the box towards a configuration and is idempotent, so
rolling back is converging every step already touched (and the one that failed) back to the
previous configuration. A step whose inputs hash as at its last success is skipped
(:class:`.memo.Memo`): the same document twice changes nothing and restarts nothing.
"""

from __future__ import annotations

import ipaddress
import json
import logging
import os
import threading
import time
from typing import Any

from astara.appliance import links, malloc, metadata_proxy, netlink, netops, routes
from astara.appliance.apply import floating
from astara.appliance.apply.announce import after_apply
from astara.appliance.apply.derive import Pairs, nic_list
from astara.appliance.apply.errors import (
    ApplyError,
    PendingError,
    PreconditionFailed,
    ResolveError,
)
from astara.appliance.apply.memo import Memo
from astara.appliance.apply.plan import NicSnapshot, Plan, resolve
from astara.appliance.apply.steps import Bird, Box, Dhcp, Firewall, Links, Metadata, Routes, Step
from astara.appliance.body import DIFFERENT, AppliedBody, SpilledBody, floating_ips_json
from astara.appliance.proxy_daemon import DEFAULT_USER, ProxyDaemon
from astara.appliance.state import StateDir, write_atomic
from astara.configdoc import (
    Configuration,
    Document,
    ValidationError,
    document_data,
    document_json,
    parse_document,
    spill_networks_json,
)

LOG = logging.getLogger(__name__)

# the order ``changed`` lists the steps in
STEP_ORDER = ("links", "routes", "firewall", "dhcp", "metadata", "bird")


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
        self.lock = threading.RLock()  # held across a floating-IP PUT's check and apply
        # a restarted API: other ETags (os.urandom: ``secrets`` loads hashlib, libcrypto: ~4 MB)
        self._etag_token = os.urandom(4).hex()
        self._generation = 0  # of ``current``: the ETag of the document the box runs
        # tenant-facing: a process of its own, asking this one who owns an address
        self.proxy = ProxyDaemon(state, self._owner_of, proxy_user)
        self.proxy.stop()  # the one an API before this one left running
        self.box = Box(state)
        self.links, self.firewall = Links(self.box), Firewall(self.box, api_port, api_address)
        self.dhcp, self.bird = Dhcp(self.box), Bird(self.box)
        # the order they run: the firewall first, so that its nft transaction (the longest
        # part of a full apply) works while the others run; ``changed`` lists them in
        # STEP_ORDER all the same
        self.steps: list[Step] = [self.firewall, self.links, Routes(self.box), self.dhcp,
                                  Metadata(self.box, self.proxy), self.bird]  # fmt: skip
        self.memo = Memo()
        self.timings: dict[str, float] = {}  # seconds per step of the last apply
        # What the last complete apply left, read and updated by the floating-IP path too
        # (floating.py): the configuration and its floating-IP pairs (the next clean-up
        # compares with them), the body, the plan and the watch of link events.
        self.last_pairs: tuple[Configuration, Pairs] | None = None
        self.applied_body: AppliedBody | None = None  # the body of the document applied last
        self._spilled: SpilledBody | None = None  # or that body left in applied.json
        self.plan_applied: Plan | None = None  # how its networks were resolved to NICs
        self._nics_seen: frozenset[tuple[int, str]] = frozenset()  # the kernel's NIC list
        self.link_watch: netlink.LinkWatch | None = None  # link events since the last apply
        self._retired: list[Any] = []  # what the last apply replaced, freed by release()
        self.nics = NicSnapshot()  # the NICs read after the last answer (release())
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

    def resolve(self, conf: Configuration, *, strict: bool = True) -> Plan:
        """``conf``'s networks matched to this box's NICs (:func:`.plan.resolve`)."""
        return resolve(self.state, conf, self.nics, strict=strict)

    def forget(self) -> None:
        """Converge every step at the next apply, the firewall with a whole ruleset."""
        self.firewall.live = None
        self.memo.forget()

    # -- apply with rollback -------------------------------------------------------------------
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
            retired = [self.current, prev, self.plan_applied, self.box.versions.seen,
                       self.box.fips.made, self.last_pairs, self.firewall.text]  # fmt: skip
            self.applied_body = self.plan_applied = None
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
        self._nics_seen = plan.nic_list if plan.nic_list is not None else nic_list()
        old_doc = self.current or Document()
        changed: list[str] = []
        done: list[Step] = []
        self.timings = {"resolve": time.monotonic() - started}
        if doc.configuration.orchestrator is not None:
            self.proxy.start()  # its interpreter starts while the steps before its own run
        for step in self.steps:
            # each step's inputs just before it: the firewall's nft starts at once
            if self.memo.unchanged(step.name, step.wants(plan)):
                continue  # converged with these very inputs by the last apply
            done.append(step)
            step_start = time.monotonic()
            try:
                if step.converge(plan):
                    changed.append(step.name)
                self.timings[step.name] = time.monotonic() - step_start
            except Exception as exc:
                LOG.error("step %s failed (%s): rolling back", step.name, exc)
                self._finish(plan, quiet=True)
                self.rollback(old_doc, done)
                raise ApplyError(step.name, str(exc)) from exc
        step_start = time.monotonic()
        older.clear()  # the documents before the last one: nothing needs them
        try:
            self._finish(plan)
            self.timings["wait"] = time.monotonic() - step_start
        except PendingError as exc:
            LOG.error("step %s failed (%s): rolling back", exc.step, exc.__cause__)
            self.rollback(old_doc, done)
            raise ApplyError(exc.step, str(exc.__cause__)) from exc.__cause__
        step_start = time.monotonic()
        last, new_fips = self.last_pairs, self.box.fips.of_plan(plan)
        old_fips = (last[1] if last is not None and last[0] is old_doc.configuration
                    else self.box.fips.of(old_doc.configuration))  # fmt: skip
        after_apply(old_doc.configuration, plan, old_fips, new_fips)
        self.last_pairs = (doc.configuration, new_fips)
        self.timings["after"] = time.monotonic() - step_start
        step_start = time.monotonic()
        for step in self.steps:  # with the daemons' new PIDs
            self.memo.remember(step.name, step.wants(plan))
        # the same bytes: the same document; without them, as models (~3 ms, 5,000 hosts)
        same = raw == prev.raw if raw is not None and prev is not None else doc == self.current
        if changed or not same:  # the request's own bytes, when it has them
            text = raw if raw is not None else document_json(doc)
            write_atomic(self.state.path / "applied.json", text)
        self.timings["save"] = time.monotonic() - step_start
        changed.sort(key=STEP_ORDER.index)
        self.set_current(doc)
        self.plan_applied = plan
        if raw is not None and floating_ips is not None:
            self.applied_body = AppliedBody.of(raw, floating_ips)
        self._watch_links()
        LOG.info(
            "configuration applied in %.3fs, changed: %s (%s)",
            time.monotonic() - started,
            ", ".join(changed) or "nothing",
            " ".join(f"{k}={v * 1000:.0f}ms" for k, v in self.timings.items()),
        )
        return changed

    def _finish(self, plan: Plan, quiet: bool = False) -> None:
        """Wait for the nft transactions steps left running; raise PendingError for a failed
        one (unless ``quiet``: a rollback follows anyway)."""
        pending, plan.pending = plan.pending, []
        for name, proc, applied in pending:
            try:
                netops.nft_wait(proc)
            except netops.NftError as exc:
                if not quiet:
                    raise PendingError(name) from exc
            else:
                applied()

    def rollback(self, old: Document, done: list[Step]) -> None:
        """Converge the steps ``done`` (in reverse) back to ``old``; forget every memo."""
        self.forget()  # a full firewall ruleset on the way back, every step at the next apply
        plan = self.resolve(old.configuration, strict=False)
        for step in reversed(done):
            try:
                step.converge(plan)
            except Exception as exc:  # keep going: restore as much as possible
                LOG.error("rollback of %s failed: %s", step.name, exc)

    def _watch_links(self) -> None:
        """Watch link events from now on; the NIC list the apply resolved must still hold."""
        if self.link_watch is not None:
            self.link_watch.close()
        self.link_watch = None
        try:
            watch = netlink.LinkWatch()
        except OSError as exc:
            LOG.warning("cannot watch link events (%s): every PUT takes the full path", exc)
            return
        if nic_list() != self._nics_seen:  # changed between resolving and watching
            watch.close()
            return
        self.link_watch = watch

    # -- the API's entry points ---------------------------------------------------------------
    def put_body(self, raw: bytes) -> tuple[Document, list[str]]:
        """Validate and apply the body of a PUT (JSON bytes): the document and what changed.

        When the body is the one applied last but (maybe) inside its ``floating_ips`` array
        (:class:`AppliedBody`: compared byte for byte, only that array parsed), and the box is
        as that apply left it (same NICs, daemons alive), only the new floating IPs are
        validated and applied (:mod:`.floating`). Otherwise the whole body is parsed and
        validated, and applied as by :meth:`apply`. Raises ValueError (not JSON, as
        ``json.loads`` says), configdoc's ValidationError, ResolveError or ApplyError.
        """
        with self.lock:
            started = time.monotonic()
            applied = self._unspill()
            if applied is not None:
                fips = applied.floating_ips_of(raw)
                if fips is not DIFFERENT:
                    body = applied.replaced(raw, fips)
                    done = floating.put_floating_ips(self, fips, body, started)
                    if done is not None:
                        return done
            data = json.loads(raw)
            doc = parse_document(data)
            return doc, self.apply(doc, raw, floating_ips_json(data))

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
            started = time.monotonic()
            applied = self._unspill()
            body = applied.with_floating_ips(floating_ips) if applied is not None else None
            if body is not None:
                done = floating.put_floating_ips(self, floating_ips, body, started)
                if done is not None:
                    return (*done, self.etag)
            # the running document with these floating IPs, parsed and applied as a whole (also
            # after a restart: no body is known then; this one's is the document's own JSON)
            data = document_data(self.current or Document())
            data["configuration"]["floating_ips"] = floating_ips
            doc = parse_document(data)
            raw = body.raw if body is not None else document_json(doc).encode()
            return doc, self.apply(doc, raw, floating_ips), self.etag

    # -- after the answer, and around it -------------------------------------------------------
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
            if self.applied_body is not None:  # its bytes are in applied.json: ~700 KB less
                self._spilled = SpilledBody.of(self.state.path / "applied.json", self.applied_body)
                if self._spilled is not None:
                    self.applied_body = None
            try:  # the networks' JSON of the answers (document_json): ~770 KB less
                spill_networks_json(self.state.run)
            except OSError as exc:
                LOG.warning("could not leave the networks' JSON in %s: %s", self.state.run, exc)
            malloc.trim()  # every apply leaves freed memory (bodies, libnftables) in the heap
            if full and self.state.management is not None:  # unclaimed: nothing is read
                self.nics.read()

    def _unspill(self) -> AppliedBody | None:
        """The body applied last, read back from ``applied.json`` if :meth:`release` left it
        there (None if that file changed since: the full path)."""
        spilled, self._spilled = self._spilled, None
        if spilled is not None:
            self.applied_body = spilled.load()
        return self.applied_body

    @property
    def etag(self) -> str:
        """The ETag of the document the box runs (changes with every other document)."""
        return f'"{self._etag_token}-{self._generation}"'

    def set_current(self, doc: Document) -> None:
        """``doc`` is the document the box runs now (another one: another ETag)."""
        if doc is not self.current:
            self._generation += 1
        self.current = doc

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
        self.nics.close()
        for daemon in (self.dhcp.dnsmasq.daemon, self.bird.bird.daemon, self.proxy):
            daemon.stop()

    def _owner_of(self, network_id: str, address: str) -> list[str] | None:
        """[device, project] of the port owning ``address`` on ``network_id`` (the proxy's
        question; the project "" when the document does not give it), in the document the box
        runs."""
        current = self.current
        conf = current.configuration if current is not None else None
        return metadata_proxy.owner(conf, network_id, address)
