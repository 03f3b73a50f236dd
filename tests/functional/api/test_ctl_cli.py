"""astara-ctl run as a real subprocess against the management API served on loopback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from astara.core.events import Action
from tests.functional.api.conftest import Served

CTL = str(Path(sys.executable).parent / "astara-ctl")


def ctl(
    *args: str, url: str | None = None, env: dict[str, str] | None = None, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("ASTARA_")}
    environment.update(env or {})
    argv = [CTL, *(["--url", url] if url else []), *args]
    return subprocess.run(
        argv, capture_output=True, text=True, env=environment, input=stdin, timeout=60
    )


def test_resource_list_and_show_explain_the_state(api: Served):
    listed = ctl("resource", "list", "-f", "json", url=api.server.url)
    assert listed.returncode == 0, listed.stderr
    assert [r["id"] for r in json.loads(listed.stdout)] == ["r-1", "r-2", "r-err"]

    shown = ctl("show", "r-err", "-f", "json", url=api.server.url)
    assert shown.returncode == 0, shown.stderr
    fields = json.loads(shown.stdout)
    assert fields["last_error"] == "boot timed out after 600 s"
    assert "CheckBoot -> ClearError (poll) boot timeout" in fields["last_transitions"]
    assert "ERROR after 5 failed boot(s)" in fields["why"]
    assert "astara-ctl router rebuild r-err" in fields["why"]


def test_router_commands_reach_the_orchestrator(api: Served):
    rebuilt = ctl("router", "rebuild", "r-1", "--image", "img-2", "-f", "json", url=api.server.url)
    assert json.loads(rebuilt.stdout)["submitted"] == 1, rebuilt.stderr
    assert (
        ctl("resource", "debug", "r-2", "--reason", "disk full", url=api.server.url).returncode == 0
    )
    assert [e.reason for e in api.store.list_resource_debug()] == ["disk full"]
    got = [(e.resource.id, e.action, dict(e.body)) for e in api.control.events]
    assert got == [
        ("r-1", Action.REBUILD, {"image": "img-2"}),
        ("r-2", Action.COMMAND, {"command": "debug", "scope": "resource", "reason": "disk full"}),
    ]
    assert ctl("router", "manage", "r-2", url=api.server.url).returncode == 0
    assert api.store.entries() == []


def test_the_other_commands_in_one_interactive_session(api: Served):
    script = "\n".join(
        [
            "poll",
            "router update r-1",
            "tenant debug tenant-a --reason migration",
            "global debug enable --reason upgrade",
            "debug list -f value",
            "config reload",
            "tenant manage tenant-a",
            "global debug disable",
            "",
        ]
    )
    session = ctl(url=api.server.url, stdin=script)  # cliff's shell: its exit code says nothing
    assert session.stderr == ""
    assert "tenant tenant-a migration" in session.stdout.replace("  ", " ")
    assert api.control.polls == 1 and api.control.reloads == 1
    actions = [(e.resource.id, e.action) for e in api.control.events]
    assert actions[0] == ("r-1", Action.UPDATE)
    assert actions[1:3] == [("r-1", Action.COMMAND), ("r-2", Action.COMMAND)]
    assert api.store.entries() == []


def test_workers_debug_prints_the_report(api: Served):
    out = ctl("workers", "debug", url=api.server.url)
    assert json.loads(out.stdout) == api.control.workers_report()


def test_errors_are_one_line_and_fail(api: Served):
    unknown = ctl("show", "nope", url=api.server.url)
    assert unknown.returncode == 1
    assert unknown.stderr.strip() == "unknown resource nope"
    down = ctl("poll", url="http://127.0.0.1:1")
    assert down.returncode == 1
    assert down.stderr.strip().startswith("cannot reach the orchestrator at http://127.0.0.1:1")
    assert len(down.stderr.strip().splitlines()) == 1


def test_token_and_url_from_environment_and_config(serve: Callable[..., Served], tmp_path: Path):
    api = serve(token="s3cret")
    refused = ctl("poll", url=api.server.url)
    assert refused.returncode == 1 and "(401)" in refused.stderr
    from_env = ctl("poll", env={"ASTARA_URL": api.server.url, "ASTARA_TOKEN": "s3cret"})
    assert from_env.returncode == 0, from_env.stderr
    port = api.server.url.rsplit(":", 1)[1]
    ini = tmp_path / "orchestrator.ini"
    ini.write_text(f"[DEFAULT]\napi_listen = ::1\napi_port = {port}\napi_token = s3cret\n")
    from_ini = ctl("--config-file", str(ini), "poll")
    assert from_ini.returncode == 0, from_ini.stderr
    assert api.control.polls == 2


def test_ssh_execs_ssh_to_the_management_address(api: Served, tmp_path: Path):
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    record = tmp_path / "argv.json"
    fake_ssh = fake_bin / "ssh"
    fake_ssh.write_text(
        f"#!{sys.executable}\nimport json, sys\njson.dump(sys.argv, open({str(record)!r}, 'w'))\n"
    )
    fake_ssh.chmod(0o755)
    path = f"{fake_bin}:{os.environ['PATH']}"
    done = ctl("ssh", "r-1", "--", "-o", "BatchMode=yes", url=api.server.url, env={"PATH": path})
    assert done.returncode == 0, done.stderr
    assert json.loads(record.read_text())[1:] == [
        "-o",
        "BatchMode=yes",
        "astara@fdca:3ba5:a17a:acda::10",
    ]
    no_address = ctl("ssh", "r-err", url=api.server.url, env={"PATH": path})
    assert no_address.returncode == 1
    assert "has no management address" in no_address.stderr


def test_resync_and_forced_resync_from_the_cli(api: Served, tmp_path: Path):
    done = ctl("resync", "-f", "json", url=api.server.url)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["forced"] is False
    forced = ctl("resync", "--force", "-f", "json", url=api.server.url)
    assert forced.returncode == 0, forced.stderr
    assert json.loads(forced.stdout)["forced"] is True
    assert api.control.resyncs == [False, True]


def test_token_from_a_file_given_to_the_cli(serve: Callable[..., Served], tmp_path: Path):
    api = serve(token="s3cret")
    token_file = tmp_path / "token"
    token_file.write_text("s3cret\n")
    done = ctl("--token-file", str(token_file), "poll", url=api.server.url)
    assert done.returncode == 0, done.stderr


def test_cluster_members_owner_and_commands_sent_to_a_non_owner(serve: Callable[..., Served]):
    from tests.unit.api.fake_control import FakeControl, router_view

    control = FakeControl([router_view("r-1")])
    control.cluster = {
        "enabled": True,
        "member_id": "host-a:44250",
        "members": ["host-a:44250", "host-b:44250"],
        "acting": True,
        "last_contact_age": 0.2,
        "ring_changes": 2,
    }
    control.owners = {"r-1": "host-a:44250", "r-9": "host-b:44250"}
    api = serve(control=control)
    shown = ctl("cluster", "show", "-f", "json", url=api.server.url)
    assert shown.returncode == 0, shown.stderr
    fields = json.loads(shown.stdout)
    assert fields["members"] == "host-a:44250, host-b:44250" and fields["acting"] is True
    owner = ctl("cluster", "owner", "r-9", "-f", "json", url=api.server.url)
    assert json.loads(owner.stdout)["owner"] == "host-b:44250", owner.stderr
    # A router another member manages: show and commands answer with its owner, submit nothing.
    for argv in (("router", "show", "r-9"), ("router", "rebuild", "r-9")):
        answer = ctl(*argv, url=api.server.url)
        assert answer.returncode == 1
        assert "managed by cluster member host-b:44250" in answer.stderr, answer.stderr
    assert control.events == []
    # An id nobody knows that this member would own: plainly unknown.
    control.owners = {**control.owners, "r-new": "host-a:44250"}
    assert ctl("show", "r-new", url=api.server.url).stderr.strip() == "unknown resource r-new"
    http = api.http.get("/v1/resources/r-9")
    assert http.status_code == 409 and http.json()["owner"] == "host-b:44250"
