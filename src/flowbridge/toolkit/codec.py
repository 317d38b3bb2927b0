"""How a call travels to a worker, and its outcome back: one codec for every adapter.

- **By value.** Calls are cloudpickled, so functions from ``__main__``, notebooks and
  closures run on workers; so do functions of modules a freshly started worker
  could not import (:func:`ship_by_value`: pytest test modules, a notebook's helper
  folder).
- **Native handles.** An adapter's own handles inside the arguments (``native=``, a
  type: Dask futures, Parsl handles) become pickle *persistent ids* and are
  returned beside the bytes, so the adapter passes them to its framework as
  top-level arguments; the framework orders the tasks and hands the worker their
  values, which :func:`load_arguments` / :func:`load_call` put back where they were.
- **The function apart.** :class:`Functions` pickles a function once and reuses the
  bytes while nothing it captures can have changed; a worker caches the function
  per bytes (:func:`load_function`).
- **The way back.** :func:`pack_outcome` uses plain pickle, which keeps the driver's
  classes by reference (a ``__main__`` class comes back as the driver's own, not
  a copy that fails ``isinstance``), and cloudpickle only for what pickle cannot
  encode there. Bytes also travel fastest through a framework's own serialiser.

Framework-free: imports cloudpickle only.
"""

from __future__ import annotations

import functools
import io
import pickle
import sys
import types
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import cloudpickle  # type: ignore[import-untyped]

from .._deps import find

__all__ = [
    "Functions",
    "load_arguments",
    "load_call",
    "load_function",
    "load_outcome",
    "pack_arguments",
    "pack_call",
    "pack_outcome",
    "ship_by_value",
]

_PROTOCOL = pickle.HIGHEST_PROTOCOL
_NO_ARGUMENTS = pickle.dumps(((), {}), protocol=_PROTOCOL)

# -- driver side: the call ---------------------------------------------------------------


def pack_call(
    func: Callable[..., Any],
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
    native: type | None = None,
) -> tuple[bytes, list[Any]]:
    """``(func, args, kwargs)`` as bytes, and the ``native`` handles found in the arguments (in order)."""
    ship_by_value(func)
    return _dumps((func, tuple(args), dict(kwargs or {})), native, args, kwargs or {})


def pack_arguments(
    args: Sequence[Any], kwargs: Mapping[str, Any], native: type | None = None
) -> tuple[bytes, list[Any]]:
    """``(args, kwargs)`` as bytes, and the ``native`` handles they hold; the function goes apart
    (:class:`Functions`)."""
    if not args and not kwargs:
        return _NO_ARGUMENTS, []
    return _dumps((tuple(args), dict(kwargs)), native, args, kwargs)


def _dumps(obj: Any, native: type | None, args: Sequence[Any], kwargs: Mapping[str, Any]) -> tuple[bytes, list[Any]]:
    if native is None or not find(native, args, kwargs):  # the plain pickler is faster: most calls hold none
        return cloudpickle.dumps(obj, protocol=_PROTOCOL), []
    buffer = io.BytesIO()
    pickler = _Pickler(buffer, native)
    pickler.dump(obj)
    return buffer.getvalue(), pickler.natives


class _Pickler(cloudpickle.Pickler):  # type: ignore[misc]
    """cloudpickle that swaps each native handle for its index in :attr:`natives`."""

    def __init__(self, file: io.BytesIO, native: type) -> None:
        super().__init__(file, protocol=_PROTOCOL)
        self._native = native
        self.natives: list[Any] = []
        self._index: dict[int, int] = {}

    def persistent_id(self, obj: Any) -> int | None:
        if not isinstance(obj, self._native):
            return None
        index = self._index.get(id(obj))
        if index is None:
            index = self._index[id(obj)] = len(self.natives)
            self.natives.append(obj)
        return index


# -- worker side: the call ---------------------------------------------------------------


class _Unpickler(pickle.Unpickler):
    def __init__(self, data: bytes | memoryview, values: Sequence[Any]) -> None:
        super().__init__(io.BytesIO(data))
        self._values = values

    def persistent_load(self, pid: Any) -> Any:
        return self._values[pid]


def _loads(data: bytes | memoryview, values: Iterable[Any]) -> Any:
    values = tuple(values)
    return _Unpickler(data, values).load() if values else pickle.loads(data)


def load_call(
    data: bytes | memoryview, values: Iterable[Any] = ()
) -> tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]:
    """A call packed by :func:`pack_call`; ``values`` take the native handles' places, in order."""
    func, args, kwargs = _loads(data, values)
    return func, args, kwargs


def load_arguments(data: bytes | memoryview, values: Iterable[Any] = ()) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """Arguments packed by :func:`pack_arguments` (see :func:`load_call`)."""
    args, kwargs = _loads(data, values)
    return args, kwargs


@functools.lru_cache(maxsize=256)
def load_function(data: bytes) -> Any:
    """A function packed by :meth:`Functions.dumps`, unpickled once per distinct bytes."""
    return pickle.loads(data)


# -- the way back ------------------------------------------------------------------------


def pack_outcome(outcome: Any) -> bytes:
    """A value or exception for the way back to the driver (load it with :func:`load_outcome`).

    Plain pickle first: classes travel by reference, so the driver rebuilds its own.
    cloudpickle where pickle cannot name a class here (one the worker knows only by
    value, e.g. the driver's ``__main__`` class shipped with the function): cloudpickle
    rebuilds it on the driver as the class it came from.
    """
    try:
        return pickle.dumps(outcome, protocol=_PROTOCOL)
    except (pickle.PicklingError, TypeError, AttributeError):
        data: bytes = cloudpickle.dumps(outcome, protocol=_PROTOCOL)
        return data


def load_outcome(data: bytes) -> Any:
    """What :func:`pack_outcome` packed."""
    return pickle.loads(data)


# -- by value ----------------------------------------------------------------------------

_by_value: dict[str, bool] = {"__main__": False, "builtins": False}
_fresh_path: list[str] = []


def _fresh_sys_path() -> list[str]:
    """``sys.path`` as a freshly started interpreter here sees it (asked once, ~20 ms)."""
    if not _fresh_path:
        import json
        import os
        import subprocess

        code = "import json, os, sys; print(json.dumps([os.path.abspath(p or '.') for p in sys.path]))"
        try:
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
            _fresh_path.extend(p for p in json.loads(out) if os.path.isdir(p))
        except (OSError, ValueError, subprocess.SubprocessError):
            _fresh_path.extend(p for p in sys.path if "site-packages" in p)
    return _fresh_path


def ship_by_value(func: Any) -> None:
    """Make cloudpickle ship ``func``'s module by value when a fresh worker could not import it.

    Modules imported through a runtime ``sys.path`` change (pytest test modules, a
    notebook's helper folder) exist only in this process; workers started afresh
    (Dask, Parsl, RADICAL-Pilot, executorlib) would fail to unpickle a reference.
    """
    name = getattr(func, "__module__", None)
    if not isinstance(name, str) or name in _by_value:
        return
    from importlib.machinery import PathFinder

    module = sys.modules.get(name)
    needed = False
    if module is not None and getattr(module, "__file__", None):
        try:
            needed = PathFinder.find_spec(name.partition(".")[0], _fresh_sys_path()) is None
        except (ImportError, ValueError):
            needed = False
    _by_value[name] = needed
    if needed:
        cloudpickle.register_pickle_by_value(module)


# -- functions, pickled once -------------------------------------------------------------

_SCALARS = (int, float, complex, str, bytes, bool, type(None), range, types.ModuleType, types.BuiltinFunctionType)
_MISSING = object()


class Functions:
    """Functions as bytes, each pickled again only when what it captures may have changed.

    A function is reused from the cache while its code, defaults, closure cells and
    the globals it names are the very same objects, and every one of them is
    immutable or travels by reference. Anything else (a global list, a helper that
    itself travels by value) is pickled afresh on every call.
    """

    def __init__(self) -> None:
        self._cache: weakref.WeakKeyDictionary[Any, tuple[tuple[Any, ...], bytes]] = weakref.WeakKeyDictionary()

    def dumps(self, func: Any) -> bytes:
        ship_by_value(func)
        key = self._snapshot(func)
        if key is not None:
            hit = self._cache.get(func)
            if hit is not None and len(hit[0]) == len(key) and all(a is b for a, b in zip(hit[0], key, strict=True)):
                return hit[1]
        data: bytes = cloudpickle.dumps(func, protocol=_PROTOCOL)
        if key is not None:
            self._cache[func] = (key, data)
        return data

    def _snapshot(self, func: Any) -> tuple[Any, ...] | None:
        """The objects a function's pickle is made of, or None when it must not be reused."""
        if type(func) is not types.FunctionType or func.__dict__:
            return None
        values: list[Any] = [func.__code__, func.__defaults__, func.__kwdefaults__]
        for value in func.__defaults__ or ():
            if not _fixed(value):
                return None
        for value in (func.__kwdefaults__ or {}).values():
            if not _fixed(value):
                return None
        for cell in func.__closure__ or ():
            try:
                value = cell.cell_contents
            except ValueError:  # an empty cell
                return None
            if not _fixed(value):
                return None
            values.append(value)
        scope = func.__globals__
        for name in _global_names(func.__code__):
            value = scope.get(name, _MISSING)
            if value is not _MISSING and not _fixed(value):
                return None
            values.append(value)
        return tuple(values)


def _fixed(value: Any) -> bool:
    if isinstance(value, _SCALARS):
        return True
    if type(value) in (tuple, frozenset):
        return all(_fixed(v) for v in value)
    if isinstance(value, (types.FunctionType, type)):  # fixed when it travels by reference
        module = sys.modules.get(getattr(value, "__module__", "") or "")
        return (
            module is not None
            and module.__name__ != "__main__"
            and "<locals>" not in value.__qualname__
            and module.__name__ not in cloudpickle.list_registry_pickle_by_value()
        )
    return False


@functools.lru_cache(maxsize=1024)
def _global_names(code: types.CodeType) -> tuple[str, ...]:
    """Names a code object (and the code it nests) may read as globals: a superset is fine."""
    names = list(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names.extend(_global_names(const))
    return tuple(dict.fromkeys(names))
