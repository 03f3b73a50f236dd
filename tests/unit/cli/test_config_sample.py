"""The committed etc/orchestrator.ini.sample is what oslo-config-generator makes today."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
GENERATOR_CONF = ROOT / "etc" / "oslo-config-generator" / "orchestrator.conf"
SAMPLE = ROOT / "etc" / "orchestrator.ini.sample"
REGENERATE = "oslo-config-generator --config-file etc/oslo-config-generator/orchestrator.conf"


def test_committed_sample_is_up_to_date(tmp_path: Path):
    fresh = tmp_path / "orchestrator.ini.sample"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "oslo_config.generator",
            "--config-file",
            str(GENERATOR_CONF),
            "--output-file",
            str(fresh),
        ],
        check=True,
        capture_output=True,
        cwd=ROOT,
    )
    assert fresh.read_text() == SAMPLE.read_text(), (
        f"etc/orchestrator.ini.sample is stale: regenerate it with '{REGENERATE}'"
    )


def test_sample_documents_every_astara_option_with_the_seed_names():
    from astara.orchestrator.config import list_opts

    text = SAMPLE.read_text()
    for group, opts in list_opts():
        assert f"[{group or 'DEFAULT'}]" in text
        for opt in opts:
            assert f"#{opt.dest} = " in text, opt.dest
    assert "Deprecated group/name - [DEFAULT]/management_net_id" in text
    assert "[oslo_messaging_rabbit]" in text and "#log_file = " in text


def _sample_options() -> list[tuple[str, str, str]]:
    """(namespace, section, option) of every option in the committed sample."""
    found, section, namespace = [], "DEFAULT", ""
    for line in SAMPLE.read_text().splitlines():
        if line.startswith("[") and line.endswith("]"):
            section = line[1:-1]
        elif line.startswith("# From "):
            namespace = line.removeprefix("# From ")
        elif match := re.match(r"#(\w+) = ", line):
            found.append((namespace, section, match.group(1)))
    return found


def _read_sites() -> set[str]:
    """Names the code under astara/ reads an option by: ``x.name``, ``x["name"]``, a name
    passed to a call (``getattr(conf, "name")``, ``_option(conf, "name", ...)``), except to
    an option's constructor (``cfg.StrOpt("name", ...)``), where it is declared, and names a
    ``for`` loop walks. Static, so a generic name (``url``) read for something else passes;
    the option-specific names it catches are those issue 15 found unread."""
    names: set[str] = set()
    for path in (ROOT / "astara").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Attribute):
                names.add(node.attr)
                continue
            if isinstance(node, ast.Subscript):
                candidates = [node.slice]
            elif isinstance(node, ast.For):  # for name in ("ssl_ca_file", ...): group[name]
                candidates = list(ast.walk(node.iter))
            elif isinstance(node, ast.Call) and not (
                isinstance(node.func, ast.Attribute) and node.func.attr.endswith("Opt")
            ):
                candidates = list(node.args)
            else:
                continue
            names.update(
                c.value
                for c in candidates
                if isinstance(c, ast.Constant) and isinstance(c.value, str)
            )
    return names


def test_every_astara_option_in_the_sample_is_read_somewhere():
    """An option in the sample that no code reads would be accepted and do nothing (issue 15).
    Astara's own options only: oslo.log's and [keystone_authtoken] (keystoneauth's, listed by
    astara.neutron) are read by those libraries (oslo_log.setup, keystoneauth1.loading's
    load_auth_from_conf_options in astara/neutron/client.py)."""
    options = [entry for entry in _sample_options() if entry[0].startswith("astara.")]
    assert len(options) > 50  # the walk found the options
    read = _read_sites()
    unread = [
        f"[{section}] {name}"
        for namespace, section, name in options
        if name not in read and section != "keystone_authtoken"
    ]
    assert not unread, f"options nothing reads (give them an effect or remove them): {unread}"
