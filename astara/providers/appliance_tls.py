"""``[appliance_tls]``: the orchestrator's side of mutual TLS with its appliances.

On by default. :meth:`ApplianceTLS.from_conf` checks at start that every file is set and
readable (a :class:`ConfigError` naming the option and the reason otherwise) and gives

- :meth:`ApplianceTLS.client_context`: the ``ssl.SSLContext`` that presents the
  orchestrator's client certificate and verifies the appliance's certificate against
  ``ca_file``, its address included (the client builds it once and shares it between httpx
  and the aliveness check);
- :meth:`ApplianceTLS.authority`: the CA that issues each appliance's server certificate.

``plain_http = true`` is the explicit opt-out: ``from_conf`` returns None and says so at
WARNING (once per process; the client also warns once per appliance).
"""

from __future__ import annotations

import logging
import os
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from astara.core.settings import ConfigError

if TYPE_CHECKING:
    from astara.providers.certificates import Authority

LOG = logging.getLogger(__name__)
GROUP = "appliance_tls"
PLAIN_WARNING = (
    "[appliance_tls] plain_http = true: appliances are configured over plain HTTP, "
    "unauthenticated and unencrypted; anyone on the management network can read or "
    "replace a router's configuration"
)
_warned_plain = False


def _readable(name: str, path: str | None, purpose: str) -> str:
    if not path:
        raise ConfigError(
            f"option [{GROUP}] {name} must be set {purpose} (or opt out of mutual TLS with "
            f"[{GROUP}] plain_http = true)"
        )
    try:
        with open(path, "rb") as f:
            f.read(1)
    except OSError as exc:
        raise ConfigError(f"option [{GROUP}] {name}: cannot read {path}: {exc.strerror}") from None
    return path


@dataclass(frozen=True)
class ApplianceTLS:
    """Mutual TLS settings, validated."""

    ca_file: str
    cert_file: str
    key_file: str
    ca_key_file: str | None = None
    server_cert_days: int = 365

    @classmethod
    def from_conf(cls, conf: Any) -> ApplianceTLS | None:
        """None with ``plain_http`` (warned once per process); ConfigError for a bad file."""
        global _warned_plain
        opts = conf[GROUP]
        if opts.plain_http:
            if not _warned_plain:
                LOG.warning(PLAIN_WARNING)
                _warned_plain = True
            return None
        purpose = "to talk to appliances over mutual TLS"
        tls = cls(
            ca_file=_readable("ca_file", opts.ca_file, purpose),
            cert_file=_readable("cert_file", opts.cert_file, purpose),
            key_file=_readable("key_file", opts.key_file, purpose),
            ca_key_file=opts.ca_key_file,
            server_cert_days=opts.server_cert_days,
        )
        tls.client_context()  # a certificate that does not match its key fails now
        return tls

    def client_context(self) -> ssl.SSLContext:
        """A client context: our certificate, the appliances' CA, hostname (address) checks.
        The appliance client builds it once and keeps it for every call."""
        try:  # with a cafile, the system's CAs are not loaded: only ca_file is trusted
            context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=self.ca_file)
        except (ssl.SSLError, ValueError) as exc:
            raise ConfigError(f"option [{GROUP}] ca_file: {self.ca_file}: {exc}") from None
        try:
            context.load_cert_chain(self.cert_file, self.key_file)
        except ssl.SSLError as exc:
            raise ConfigError(
                f"options [{GROUP}] cert_file/key_file: {self.cert_file} with {self.key_file}: "
                f"{exc.reason or exc}"
            ) from None
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        return context

    def authority(self) -> Authority:
        """The CA that issues appliance server certificates (ConfigError if it cannot)."""
        from astara.providers.certificates import Authority

        key_file = _readable("ca_key_file", self.ca_key_file, "to issue appliance certificates")
        if os.stat(key_file).st_mode & 0o077:
            LOG.warning("[%s] ca_key_file %s is readable by others than its owner", GROUP, key_file)
        try:
            return Authority.load(self.ca_file, key_file)
        except ValueError as exc:
            raise ConfigError(f"option [{GROUP}] ca_key_file: {exc}") from None
