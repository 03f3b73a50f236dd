"""The appliance configuration document (DESIGN §5): frozen msgspec Structs, validated here.

The orchestrator's router driver builds it, the appliance validates and applies it. Key names are
the 2016 seed's; ``version`` (default 1) lets both sides evolve. :func:`parse_document` (parsed
JSON) and :func:`decode_document` (JSON bytes) check the structure and then the meaning
(addresses inside their subnets, no duplicates, floating IPs that point at internal addresses,
...), and report every bad field with its path.

The models are declared once, as ``msgspec.Struct`` classes whose annotations carry the
constraints (``msgspec.Meta``: patterns, lengths, bounds); msgspec decodes a document in one
pass (from bytes, or from parsed JSON), and makes the JSON Schema of :func:`json_schema`.
msgspec stops at its first error: only then a second pass (:mod:`~astara.configdoc.explain`)
walks the JSON field by field and item by item, converting each leaf alone with msgspec, to
list every structural error with its path; the meaning is checked once the structure is valid,
and every error of it is listed too. Errors are ``{"loc", "msg", "type", "input"}`` with the
types the API has always answered (``missing``, ``extra_forbidden``,
``string_pattern_mismatch``, ``int_parsing``, ``literal_error``, ``ip_any_address``, ...) and
msgspec's messages. Decoding is msgspec's lax mode: ``"1500"`` is an MTU, ``"true"`` a boolean;
addresses must be strings.

Every string a tenant controls (names, descriptions, hostnames, ids) must match a strict pattern,
so nothing unescaped can reach a command line or a daemon's configuration file.

One module a job: :mod:`~astara.configdoc.models` (the patterns, the constraints and the
Structs), :mod:`~astara.configdoc.codec` (addresses to and from text, the decoder and encoder,
the JSON Schema), :mod:`~astara.configdoc.errors`, :mod:`~astara.configdoc.explain` (every
structural error), :mod:`~astara.configdoc.meaning` (the checks of the meaning) and
:mod:`~astara.configdoc.parse` (parsing, the floating-IP path, JSON). Import from the package.
"""

from __future__ import annotations

from astara.configdoc.codec import ip_text, json_schema
from astara.configdoc.errors import ErrorDetails, Errors, Loc, ValidationError
from astara.configdoc.models import (
    GROUP_RE,
    HOSTNAME_RE,
    ID_RE,
    IFNAME_RE,
    MAC_RE,
    NO_SCOPE_ID_RE,
    TEXT_RE,
    AddressAllocation,
    Asn,
    Configuration,
    Document,
    FloatingIP,
    FloatingIPs,
    Hostname,
    HostRoute,
    Identifier,
    Interface,
    IPAddress,
    IPInterface,
    IPNetwork,
    Ipv6Mode,
    MacAddress,
    Network,
    NetworkType,
    Orchestrator,
    Port,
    StaticRoute,
    Subnet,
    Text,
)
from astara.configdoc.parse import (
    decode_document,
    document_data,
    document_errors,
    document_json,
    parse_document,
    spill_networks_json,
    with_floating_ips,
)

__all__ = [
    "GROUP_RE",
    "HOSTNAME_RE",
    "ID_RE",
    "IFNAME_RE",
    "MAC_RE",
    "NO_SCOPE_ID_RE",
    "TEXT_RE",
    "AddressAllocation",
    "Asn",
    "Configuration",
    "Document",
    "ErrorDetails",
    "Errors",
    "FloatingIP",
    "FloatingIPs",
    "HostRoute",
    "Hostname",
    "IPAddress",
    "IPInterface",
    "IPNetwork",
    "Identifier",
    "Interface",
    "Ipv6Mode",
    "Loc",
    "MacAddress",
    "Network",
    "NetworkType",
    "Orchestrator",
    "Port",
    "StaticRoute",
    "Subnet",
    "Text",
    "ValidationError",
    "decode_document",
    "document_data",
    "document_errors",
    "document_json",
    "ip_text",
    "json_schema",
    "parse_document",
    "spill_networks_json",
    "with_floating_ips",
]
