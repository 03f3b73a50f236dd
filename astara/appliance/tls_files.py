"""An appliance's TLS files: its server certificate, key and the CA its clients must chain to.

They live in ``<state dir>/tls/`` (directory 0700, files 0600): the netns provider writes them
there before it starts the API; on a Nova boot ``astara-configure-management --tls-bundle``
writes them from the user data. ``astara-appliance-api`` is started with
``--tls-cert/--tls-key/--tls-ca`` naming them whenever they are there (:func:`api_arguments`).

The bundle in the user data is base64 of a JSON object ``{"cert", "key", "ca"}`` (PEM text):
one command-line word, about 2.5 KB with P-256 keys. Standard library only (appliance side).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from dataclasses import dataclass
from pathlib import Path

DIRECTORY = "tls"
CERT = "server.pem"
KEY = "server.key"
CA = "ca.pem"


@dataclass(frozen=True)
class ServerFiles:
    """PEM text of one appliance's server certificate, its key and the client CA."""

    cert: str
    key: str
    ca: str

    def encode(self) -> str:
        """The one-word bundle for ``astara-configure-management --tls-bundle``."""
        text = json.dumps({"cert": self.cert, "key": self.key, "ca": self.ca})
        return base64.b64encode(text.encode()).decode()

    @classmethod
    def decode(cls, bundle: str) -> ServerFiles:
        """ValueError naming what is wrong with a bundle."""
        try:
            data = json.loads(base64.b64decode(bundle, validate=True))
        except (binascii.Error, ValueError) as exc:
            raise ValueError(f"TLS bundle is not base64 JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ValueError("TLS bundle is not a JSON object")
        fields = {}
        for name, marker in (("cert", "CERTIFICATE-----"), ("key", "PRIVATE KEY-----"),
                             ("ca", "CERTIFICATE-----")):  # fmt: skip
            value = data.get(name)
            if (
                not isinstance(value, str)
                or not value.startswith("-----BEGIN ")
                or (marker not in value.split("\n", 1)[0])
            ):
                raise ValueError(f"TLS bundle: {name!r} is not PEM ({marker.strip('-')})")
            fields[name] = value
        return cls(**fields)

    def write(self, state_dir: str | os.PathLike[str]) -> Path:
        """Write the three files (0600, directory 0700), each replaced atomically."""
        directory = Path(state_dir) / DIRECTORY
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(directory, 0o700)
        for name, text in ((CERT, self.cert), (KEY, self.key), (CA, self.ca)):
            tmp = directory / f".{name}.{os.getpid()}.tmp"
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(text)
            os.replace(tmp, directory / name)
        return directory


def api_arguments(state_dir: str | os.PathLike[str]) -> list[str]:
    """``--tls-cert F --tls-key F --tls-ca F`` if the state dir holds the files, else []."""
    directory = Path(state_dir) / DIRECTORY
    if not (directory / CERT).is_file():
        return []
    return [
        "--tls-cert", str(directory / CERT),
        "--tls-key", str(directory / KEY),
        "--tls-ca", str(directory / CA),
    ]  # fmt: skip
