"""The appliance configuration document (DESIGN §5): frozen dataclasses, validated here.

The orchestrator's router driver builds it, the appliance validates and applies it. Key names are
the 2016 seed's; ``version`` (default 1) lets both sides evolve. :func:`parse_document` checks the
structure and then the meaning (addresses inside their subnets, no duplicates, floating IPs that
point at internal addresses, ...), and reports every bad field with its path.

The models are declared once, as annotated dataclasses; what each annotation means (types,
patterns, bounds, defaults) is compiled into the validators and into the JSON Schema of
:func:`json_schema`. Errors have pydantic v2's shape and names (``loc``, ``msg``, ``type``:
``missing``, ``extra_forbidden``, ``string_pattern_mismatch``, ...): the document was pydantic
models before, and its clients read these. Numbers and booleans are coerced as pydantic's lax
mode did (``"1500"`` is an MTU); addresses must be strings.

Every string a tenant controls (names, descriptions, hostnames, ids) must match a strict pattern,
so nothing unescaped can reach a command line or a daemon's configuration file.

One module a job: :mod:`~astara.configdoc.models` (the patterns, the constraints and the frozen
dataclasses), :mod:`~astara.configdoc.validate` (the validators and JSON Schemas compiled from the
annotations, and the errors), :mod:`~astara.configdoc.meaning` (the checks of the meaning) and
:mod:`~astara.configdoc.parse` (parsing, the floating-IP path, JSON). Import from the package.
"""

from __future__ import annotations

from astara.configdoc.models import (
    GROUP_RE,
    HOSTNAME_RE,
    ID_RE,
    IFNAME_RE,
    MAC_RE,
    TEXT_RE,
    AddressAllocation,
    Asn,
    Configuration,
    Document,
    FloatingIP,
    Hostname,
    HostRoute,
    Identifier,
    Interface,
    IPAddress,
    IPInterface,
    IPNetwork,
    Ipv6Mode,
    MacAddress,
    MaxItems,
    Network,
    NetworkType,
    Orchestrator,
    Pattern,
    Port,
    Range,
    StaticRoute,
    Subnet,
    Text,
    ip_text,
)
from astara.configdoc.parse import (
    document_data,
    document_errors,
    document_json,
    parse_document,
    spill_networks_json,
    with_floating_ips,
)
from astara.configdoc.validate import ErrorDetails, Errors, Loc, ValidationError, json_schema

__all__ = [
    "GROUP_RE",
    "HOSTNAME_RE",
    "ID_RE",
    "IFNAME_RE",
    "MAC_RE",
    "TEXT_RE",
    "AddressAllocation",
    "Asn",
    "Configuration",
    "Document",
    "ErrorDetails",
    "Errors",
    "FloatingIP",
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
    "MaxItems",
    "Network",
    "NetworkType",
    "Orchestrator",
    "Pattern",
    "Port",
    "Range",
    "StaticRoute",
    "Subnet",
    "Text",
    "ValidationError",
    "document_data",
    "document_errors",
    "document_json",
    "ip_text",
    "json_schema",
    "parse_document",
    "spill_networks_json",
    "with_floating_ips",
]
