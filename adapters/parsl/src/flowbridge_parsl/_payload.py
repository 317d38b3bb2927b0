"""How a function task travels: one cloudpickled payload plus its dependencies as top-level arguments.

Parsl pickles a function by reference and only sees futures passed directly as
arguments. So every function task runs through the same two small runners
below (importable on any worker that has flowbridge-parsl), with the user's call
serialised by value. Upstream handles found anywhere in the call's arguments
become pickle *persistent ids*: the handles themselves go to Parsl as top-level
arguments, so the DataFlowKernel waits for them and hands their values to the
runner, which puts them back where they were.
"""

from __future__ import annotations

import importlib.machinery
import io
import json
import os
import pickle
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import cloudpickle  # type: ignore[import-untyped]

from flowbridge import worker

# -- worker side -------------------------------------------------------------------------


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes, values: Sequence[Any]) -> None:
        super().__init__(io.BytesIO(data))
        self._values = values

    def persistent_load(self, pid: Any) -> Any:
        return self._values[pid]


def run_function(payload: bytes, *deps: Any, **_parsl: Any) -> Any:
    """Run a call packed by :func:`pack`; ``deps`` are the values of its upstream tasks.

    ``_parsl`` swallows what Parsl adds to an app's keyword arguments
    (``parsl_resource_specification``, ``walltime``): it never reaches the user's function.
    """
    if deps:
        func, args, kwargs = _Unpickler(payload, deps).load()
    else:
        func, args, kwargs = pickle.loads(payload)
    return worker.call(func, args, kwargs)


def run_command(command: str | tuple[str, ...], **_parsl: Any) -> str:
    """Bash-app semantics: stdout is the result, a non-zero exit is TaskFailed."""
    return worker.run_command(command)


# -- driver side --------------------------------------------------------------------------


class _Pickler(cloudpickle.Pickler):  # type: ignore[misc]
    def __init__(self, file: io.BytesIO, handle_type: type, deps: list[Any]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self._handle_type = handle_type
        self._deps = deps
        self._index: dict[int, int] = {}

    def persistent_id(self, obj: Any) -> int | None:
        if type(obj) is not self._handle_type:
            return None
        key = id(obj)
        index = self._index.get(key)
        if index is None:
            index = self._index[key] = len(self._deps)
            self._deps.append(obj)
        return index


def pack(
    func: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any], handle_type: type, has_deps: bool
) -> tuple[bytes, list[Any]]:
    """The call as bytes, and the upstream handles (of ``handle_type``) it refers to, in order."""
    if not has_deps:
        return cloudpickle.dumps((func, args, dict(kwargs)), protocol=pickle.HIGHEST_PROTOCOL), []
    deps: list[Any] = []
    buffer = io.BytesIO()
    _Pickler(buffer, handle_type, deps).dump((func, args, dict(kwargs)))
    return buffer.getvalue(), deps


class ByValue:
    """Decides, once per module, whether its functions must travel by value.

    A module imported through a runtime ``sys.path`` change (a pytest test module, a
    notebook's helper folder) cannot be imported by a worker started afresh, and
    cloudpickle would ship its functions by reference. Such modules are registered
    with ``cloudpickle.register_pickle_by_value``.
    """

    def __init__(self) -> None:
        self._base: list[str] | None = None
        self._known: dict[str, bool] = {"__main__": False, "builtins": False}

    def prepare(self) -> None:
        """Learn the ``sys.path`` a fresh interpreter gets here (blocking; run it off the loop)."""
        if self._base is not None:
            return
        code = "import json, os, sys; print(json.dumps([os.path.abspath(p or '.') for p in sys.path]))"
        try:
            out = subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
            ).stdout
            self._base = [p for p in json.loads(out) if os.path.isdir(p)]
        except (OSError, subprocess.SubprocessError, ValueError):
            self._base = [p for p in sys.path if p and "site-packages" in p]

    def check(self, func: Any) -> None:
        name = getattr(func, "__module__", None)
        if name is None or self._known.get(name) is not None:
            return
        self._known[name] = by_value = self._needs_value(name)
        if by_value:
            cloudpickle.register_pickle_by_value(sys.modules[name])

    def _needs_value(self, name: str) -> bool:
        module = sys.modules.get(name)
        if module is None or getattr(module, "__file__", None) is None or self._base is None:
            return False
        top = name.partition(".")[0]
        try:
            return importlib.machinery.PathFinder.find_spec(top, self._base) is None
        except (ImportError, ValueError):
            return False
