"""Keep the appliance's interpreters small: no ``inspect`` where nothing needs it.

The API (:func:`astara.appliance.cli.api`) and the metadata proxy process (:func:`proxy_main`,
what :mod:`astara.appliance.proxy_daemon` runs) call :func:`without_inspect` first.
``dataclasses`` (h11's events, :mod:`astara.appliance.httpmessages`) imports ``inspect`` for one
call, ``inspect.signature``, made only for a class without a docstring; ``inspect`` brings
``ast``, ``dis`` and ``opcode``: 0.8 MB of each process's own memory for nothing. A
stand-in takes its place: its ``signature`` raises ValueError (which
``dataclasses`` catches), and any other name loads the real module and answers from it.
Python before 3.11.4 (Debian 12 has 3.11.2: the appliance image) does not catch it (CPython
gh-103449), so there the real module stays.
"""

from __future__ import annotations

import sys
import types
from typing import Any


def _signature(obj: Any, *args: Any, **kwargs: Any) -> Any:
    raise ValueError("no signatures here (inspect is not loaded)")


def _real(name: str) -> Any:
    """Anything but ``signature``: the real module, from now on in ``sys.modules`` too."""
    import importlib

    if isinstance(sys.modules.get("inspect"), _Stand):
        del sys.modules["inspect"]
    return getattr(importlib.import_module("inspect"), name)


class _Stand(types.ModuleType):
    """The stand-in's type (to tell it from the real module)."""


def without_inspect() -> None:
    """Put the stand-in for ``inspect`` in ``sys.modules`` if nothing loaded the module yet."""
    if "inspect" in sys.modules or sys.version_info < (3, 11, 4):
        return
    stand = _Stand("inspect", "A stand-in for inspect (astara.appliance.slim).")
    setattr(stand, "signature", _signature)  # noqa: B010 - a module's names
    setattr(stand, "__getattr__", _real)  # noqa: B010 - PEP 562: the names it lacks
    sys.modules["inspect"] = stand


def proxy_main(argv: list[str]) -> int:
    """The metadata proxy process: ``argv``, the control and lookup sockets' descriptors and the
    user, as :func:`astara.appliance.metadata_proxy.run_fd` takes them."""
    without_inspect()
    from astara.appliance.metadata_proxy import run_fd

    return run_fd(*argv[:3])
