"""The metadata proxy's interpreter stays small: no ``inspect`` (nor the ``ast``, ``dis`` and
``opcode`` it brings) and no ``urllib.parse``, with h11 and the HTTP layer working as before."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.parse
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from astara.appliance.httpconnection import unquote
from astara.appliance.proxy_daemon import _argv

PROBE = """
import json, sys
from astara.appliance.slim import without_inspect
without_inspect()
import astara.appliance.metadata_proxy, dataclasses, h11
loaded = sorted(m for m in ("ast", "dis", "opcode", "urllib.parse", "ipaddress")
                if m in sys.modules)
stand = type(sys.modules["inspect"]).__name__
@dataclasses.dataclass
class NoDoc:
    a: int
event = h11.Request(method="GET", target="/", headers=[("Host", "x")])
import inspect  # any other name than signature: the real module, loaded then
real = inspect.isfunction(without_inspect) and type(sys.modules["inspect"]).__name__
print(json.dumps([loaded, stand, NoDoc(1).a, event.target.decode(), real]))
"""


def test_the_proxy_interpreter_loads_no_inspect_and_no_urllib() -> None:
    path = _argv(0, 0, None)[6]  # astara's and h11's directories, as the API passes them
    code = f"import sys; sys.path[:0] = {path.split(':')!r}\n" + PROBE
    out = subprocess.run([sys.executable, "-I", "-S", "-B", "-c", code], capture_output=True,
                         text=True, check=True, timeout=60)  # fmt: skip
    loaded, stand, value, target, real = json.loads(out.stdout)
    assert loaded == []
    assert stand == "_Stand"  # the proxy's modules never asked for more than signature()
    assert (value, target) == (1, "/")
    assert real == "module"


@given(st.text(alphabet="%0123456789abcdefABCDEFgz/ ~.", max_size=24))
def test_unquote_is_urllib_parse_unquote(target: str) -> None:
    assert unquote(target) == urllib.parse.unquote(target)


API_PROBE = """
import json, sys
from astara.appliance import slim
slim.without_inspect()
import astara.appliance.api, astara.appliance.apply, astara.appliance.cli
from astara.appliance.openapi import openapi_json
loaded = sorted(m for m in ("ast", "dis", "opcode") if m in sys.modules)
print(json.dumps([loaded, type(sys.modules["inspect"]).__name__, json.loads(openapi_json())]))
"""


def test_the_api_modules_load_no_inspect_and_publish_the_same_openapi() -> None:
    """The API as ``astara-appliance-api`` runs it: the models' descriptions are their own
    docstrings, the same with or without ``inspect``."""
    out = subprocess.run([sys.executable, "-c", API_PROBE], capture_output=True, text=True,
                         check=True, timeout=60, cwd=Path(__file__).parents[3])  # fmt: skip
    loaded, stand, spec = json.loads(out.stdout)
    assert (loaded, stand) == ([], "_Stand")
    assert spec == json.loads(
        (Path(__file__).parents[3] / "docs/appliance-openapi.json").read_text()
    )
