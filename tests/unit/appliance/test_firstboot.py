"""The image's first boot reads exactly what the Nova provider writes (one source, no drift)."""

from __future__ import annotations

import json

import pytest

from astara.appliance.firstboot import parse_user_data
from astara.appliance.tls_files import ServerFiles
from astara.providers import nova_userdata

PEM = "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n"
KEY = "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n"


def test_the_nova_providers_user_data_is_understood() -> None:
    bundle = ServerFiles(PEM, KEY, PEM).encode()
    text = nova_userdata.cloud_config("FA:16:3E:00:00:01", "fdca:3ba5:a17a::5/64",
                                      ssh_public_key="ssh-ed25519 AAAA op@host\n",
                                      hostname="ak-router-1", tls_bundle=bundle)  # fmt: skip
    request = parse_user_data(text)
    assert request.hostname == "ak-router-1"
    assert request.users == [("astara", ["ssh-ed25519 AAAA op@host"])]
    assert request.configure == [["--state-dir", "/var/lib/astara", "--tls-bundle", bundle,
                                  "FA:16:3E:00:00:01", "fdca:3ba5:a17a::5/64"]]  # fmt: skip
    assert request.ignored == []


def test_without_a_key_no_user_and_other_commands_are_refused() -> None:
    configure = ["/usr/bin/astara-configure-management", "--state-dir", "/s", "m", "a/1"]
    text = "#cloud-config\n" + json.dumps({"bootcmd": ["rm -rf /", configure]})
    request = parse_user_data(text)
    assert request.users == [] and request.hostname is None
    assert request.configure == [["--state-dir", "/s", "m", "a/1"]]
    assert request.ignored == ["rm -rf /"]


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("#!/bin/sh\necho hi\n", "not a #cloud-config"),
        ("#cloud-config\nbootcmd: [x]\n", "not the Nova provider's JSON"),
        ("#cloud-config\n[1]\n", "not a cloud-config mapping"),
    ],
)
def test_other_user_data_is_refused_with_the_reason(text: str, why: str) -> None:
    with pytest.raises(ValueError, match=why):
        parse_user_data(text)
