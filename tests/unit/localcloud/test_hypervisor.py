"""The hypervisor stand-in reads what to run from the server's cloud-init user data."""

from __future__ import annotations

import base64

from astara.providers import nova_userdata
from astara_localcloud.hypervisor import CONFIGURE_BIN, boot_command, guest_of

MAC = "fa:16:3e:00:00:01"
CIDR = "fdca:3ba5:a17a:acda::12/64"


def _encoded(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def test_boot_command_is_the_user_datas_bootcmd_with_this_installations_program() -> None:
    user_data = nova_userdata.cloud_config(MAC, CIDR, state_dir="/var/lib/astara", hostname="x")
    argv = boot_command(nova_userdata.encode(user_data))
    assert argv == [CONFIGURE_BIN, "--state-dir", "{state_dir}", MAC, CIDR]


def test_guest_of_an_active_appliance_server() -> None:
    user_data = nova_userdata.encode(nova_userdata.cloud_config(MAC.upper(), CIDR))
    server = {
        "id": "s1",
        "tenant_id": "p1",
        "image": {"id": "img"},
        "OS-EXT-SRV-ATTR:user_data": user_data,
    }
    guest = guest_of(server)
    assert guest is not None
    assert (guest.server_id, guest.tenant_id, guest.image) == ("s1", "p1", "img")
    assert guest.management_mac == MAC


def test_servers_that_are_not_appliances_are_left_alone() -> None:
    assert boot_command(None) is None
    assert boot_command("not base64!") is None
    assert boot_command(_encoded("#!/bin/sh\necho hi\n")) is None
    assert boot_command(_encoded('#cloud-config\n{"bootcmd": [["echo", "hi"]]}\n')) is None
    assert guest_of({"id": "s2", "OS-EXT-SRV-ATTR:user_data": None}) is None


def test_a_tls_bundle_in_the_boot_command_is_passed_on_and_not_taken_for_the_mac() -> None:
    from astara.providers.certificates import Authority

    bundle = Authority.create().issue_server(CIDR.split("/")[0]).encode()
    text = nova_userdata.cloud_config(MAC, CIDR, tls_bundle=bundle)
    server = {"id": "s3", "OS-EXT-SRV-ATTR:user_data": nova_userdata.encode(text)}
    guest = guest_of(server)
    assert guest is not None and guest.management_mac == MAC
    assert guest.configure == [
        CONFIGURE_BIN, "--state-dir", "{state_dir}", "--tls-bundle", bundle, MAC, CIDR,
    ]  # fmt: skip
