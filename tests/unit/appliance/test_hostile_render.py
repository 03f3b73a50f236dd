"""Property: no value a tenant controls puts a line into a rendered file that the document did
not intend. A hostile string goes into one field of a benign document; either the document is
refused, or every file the appliance renders from it (dnsmasq conf, hosts and options, bird
conf, the nft ruleset, the ``ip -batch`` lines of links and routes) has the line structure the
benign document gives: no line break or control character of any kind inside a line, no more
lines than the benign document's, each of a kind (its directive) the renderer writes there."""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from astara.appliance import bird, dhcp, firewall, links, routes
from astara.appliance.state import StateDir
from astara.configdoc import Configuration, ValidationError, parse_document
from tests.functional.appliance.lab import base_document, with_fip, with_vm2

STATE = StateDir(Path("/nonexistent-astara-test-state"))  # only its paths are rendered

# what breaks a line or a config file: line breaks of every kind, NUL, quotes, comments,
# braces, separators of dnsmasq options, nft sets, ip's batch words, a scope id's %
FRAGMENTS = ["\n", "\r", "\r\n", "\x00", "\x0b", "\x0c", "\x1c", "\x85", "\u2028", "\u2029",
             '"', "'", "\\", "#", ";", "{", "}", ",", "=", " ", "\t", "%", "%eth0\n", "$(id)",
             "`id`", "*", "[", "]"]  # fmt: skip
hostile = st.tuples(
    st.sampled_from(["", "%", "%x"]),  # a scope id's text follows: anything but "%" and "/"
    st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=4)), min_size=1, max_size=5),
).map(lambda parts: parts[0] + "".join(parts[1]))

INT = ("configuration", "networks", 2)
ALLOC = (*INT, "address_allocations", 0)
SUB4, SUB6 = (*INT, "subnets", 0), (*INT, "subnets", 1)
# (path, benign value the hostile text is added to; "" replaces it)
FIELDS: list[tuple[tuple[Any, ...], str]] = [
    ((*ALLOC, "hostname"), "vm-one"),
    ((*ALLOC, "hostname"), ""),
    ((*ALLOC, "device_id"), "dev-vm1"),
    ((*ALLOC, "mac_address"), "fa:16:3e:00:00:05"),
    ((*INT, "interface", "description"), "tenant net"),
    ((*INT, "interface", "description"), ""),
    ((*INT, "interface", "media"), ""),
    ((*INT, "interface", "groups", 0), "tenant"),
    ((*INT, "name"), "private"),
    ((*INT, "network_id"), "net-int"),
    ((*SUB4, "id"), "s-int"),
    ((*SUB4, "dns_nameservers", 0), "192.0.2.53"),
    ((*SUB6, "dns_nameservers", 0), "2001:db8:10::53"),
    ((*SUB6, "gateway_ip"), "2001:db8:10::1"),
    ((*SUB4, "host_routes", 0, "destination"), "192.168.50.0/24"),
    ((*SUB4, "host_routes", 0, "nexthop"), "10.10.10.254"),
    ((*INT, "interface", "addresses", 1), "2001:db8:10::1/64"),
    (("configuration", "static_routes", 0, "destination"), "2001:db8:77::/64"),
    (("configuration", "static_routes", 0, "nexthop"), "2001:db8:ff::1"),
    (("configuration", "floating_ips", 0, "floating_ip"), "172.24.4.100"),
    (("configuration", "tenant_id"), "tenant-a"),
    (("configuration", "hostname"), "router-a"),
]


def benign() -> dict[str, Any]:
    """A document using every field of FIELDS with a benign value."""
    doc = with_fip(with_vm2(base_document()))
    conf = doc["configuration"]
    conf["static_routes"] = [{"destination": "2001:db8:77::/64", "nexthop": "2001:db8:ff::1"}]
    net = conf["networks"][2]
    net["name"] = "private"
    net["interface"].update(description="tenant net", groups=["tenant"], media="")
    net["subnets"][1]["dns_nameservers"] = ["2001:db8:10::53"]
    return doc


def _set(doc: dict[str, Any], path: tuple[Any, ...], value: str) -> None:
    node: Any = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


def _directive(line: str) -> str:
    """What a line is, whatever the values in it: its first word, up to ``=`` (dnsmasq
    options), or the shape of its comma-separated fields (dnsmasq hosts and options)."""
    word = line.strip().split(" ", 1)[0]
    if "=" in word:
        return word.split("=", 1)[0]
    return re.sub(r"[^,]+", "x", word) if "," in word else word


def rendered(conf: Configuration) -> dict[str, str]:
    """Every file the appliance writes for ``conf``, by name."""
    ifnames = {net.network_id: f"ge{i}" for i, net in enumerate(conf.networks)}
    files = dhcp.render(conf, ifnames, STATE)
    out = {"dnsmasq.conf": files.main, "dnsmasq.hosts": files.hosts, "dnsmasq.opts": files.opts}
    out["bird.conf"] = bird.render(conf, ifnames) or ""
    out["nft"] = firewall.render(firewall.inputs_from(conf, ifnames, 5000, ("ge0",)))
    batch: list[str] = []
    for net in conf.networks:
        iface = net.interface
        name = ifnames[net.network_id]
        bare = links.Link(index=1, ifname=name, mac="02:00:00:00:00:01", mtu=1400, up=False,
                          alias="")  # fmt: skip
        up = iface.state == "up"
        batch += links.link_changes(bare, addresses=iface.addresses, mtu=iface.mtu, up=up,
                                    description=iface.description)  # fmt: skip
    batch += routes.route_batch(set(), routes.desired_routes(conf))
    out["ip-batch"] = "\n".join(batch) + "\n"
    return out


def _directives(text: str) -> list[str]:
    return [_directive(line) for line in text.split("\n") if line]


# C0 controls but tab, DEL, C1 controls, the Unicode line and paragraph separators
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


BENIGN = rendered(parse_document(benign()).configuration)


def test_the_benign_document_renders_every_field() -> None:
    assert "vm-one" in BENIGN["dnsmasq.hosts"] and "192.0.2.53" in BENIGN["dnsmasq.opts"]
    assert "2001:db8:10::53" in BENIGN["bird.conf"] and "172.24.4.100" in BENIGN["nft"]
    assert 'alias "tenant net"' in BENIGN["ip-batch"] and "2001:db8:77::/64" in BENIGN["ip-batch"]


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(field=st.sampled_from(FIELDS), text=hostile, at_end=st.booleans())
def test_hostile_values_are_refused_or_render_the_intended_lines(
    field: tuple[tuple[Any, ...], str], text: str, at_end: bool
) -> None:
    path, value = field
    doc = copy.deepcopy(benign())
    _set(doc, path, value + text if at_end else text + value)
    try:
        conf = parse_document(doc).configuration
    except ValidationError:
        return  # refused: nothing is rendered
    for name, text_ in rendered(conf).items():
        lines = text_.split("\n")
        assert text_.splitlines() == lines[:-1], name  # no line break of any other kind
        assert not any(_CONTROL.search(line) for line in lines), name
        # the lines the renderer means: no more than the benign document's, each of a kind
        # it writes there (a valid value may leave a line out: a route via an unknown hop)
        found, intended = _directives(text_), _directives(BENIGN[name])
        assert len(found) <= len(intended) and set(found) <= set(intended), (name, text_)


HOSTILE_EXAMPLES: list[Callable[[dict[str, Any]], None]] = [
    lambda d: _set(d, (*SUB6, "dns_nameservers", 0), "fe80::53%x\nrdnss { ns ::1; }"),
    lambda d: _set(d, (*ALLOC, "hostname"), "vm\ndhcp-script=/bin/sh"),
    lambda d: _set(d, (*INT, "interface", "description"), 'x"\nlink set dev ge0 down'),
    lambda d: _set(d, ("configuration", "static_routes", 0, "nexthop"), "fe80::1%lo\nflush"),
]


def test_known_injections_are_refused() -> None:
    for inject in HOSTILE_EXAMPLES:
        doc = benign()
        inject(doc)
        try:
            parse_document(doc)
        except ValidationError:
            continue
        raise AssertionError(f"accepted: {doc}")
