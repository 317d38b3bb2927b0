"""How a function task travels: the function and its arguments cloudpickled, dependencies top-level.

Parsl pickles a function by reference and only sees futures passed directly as
arguments. So every function task runs through the same small runner below
(importable on any worker that has flowbridge-parsl), with the user's function
and arguments serialised by value. Upstream handles found anywhere in the
arguments become pickle *persistent ids*: the handles themselves go to Parsl as
top-level arguments, so the DataFlowKernel waits for them and hands their values
to the runner, which puts them back where they were.

The function is pickled apart from its arguments, so that both sides can reuse
it: the driver while nothing it captures can have changed (:class:`Functions`),
a worker for as long as the bytes are the same.
"""

from __future__ import annotations

import functools
import io
import pickle
import sys
import types
import weakref
from collections.abc import Mapping, Sequence
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


@functools.lru_cache(maxsize=256)
def _function(data: bytes) -> Any:
    return pickle.loads(data)


def run_function(function: bytes, arguments: bytes, *deps: Any, **_parsl: Any) -> Any:
    """Run a call packed by :func:`pack`; ``deps`` are the values of its upstream tasks.

    ``_parsl`` swallows what Parsl adds to an app's keyword arguments
    (``parsl_resource_specification``, ``walltime``): it never reaches the user's function.
    """
    func = _function(function)
    if deps:  # an upstream's result is a worker.Ran: its value takes the place
        args, kwargs = _Unpickler(arguments, tuple(map(worker.unwrap, deps))).load()
    else:
        args, kwargs = pickle.loads(arguments)
    return worker.timed_call(func, args, kwargs, pack_main=True)


def run_command(
    command: str | tuple[str, ...],
    tag: str | None = None,
    owner: str | None = None,
    marker: str | None = None,
    **_parsl: Any,
) -> worker.Ran:
    """Bash-app semantics: stdout is the result (measured: a ``worker.Ran``), a non-zero exit is TaskFailed.

    The command carries ``FLOWBRIDGE_TASK=tag`` and ``FLOWBRIDGE_OWNER=owner``, so the
    driver kills it with its tree on cancel (same host). ``marker`` is a file the driver
    creates when it cancels the task: a command not started yet never starts, and one
    running is killed within :data:`POLL` s, wherever the file is visible (a shared
    filesystem reaches remote nodes).
    """
    import os

    if marker is not None and os.path.exists(marker):
        raise RuntimeError(f"command {command!r} not run: its task was cancelled before a worker took it")

    def watch(proc: Any) -> None:
        if marker is None:
            return
        import threading

        threading.Thread(target=_watch_marker, args=(proc, marker, tag), daemon=True).start()

    return worker.timed_run_command(command, task=tag, owner=owner, on_start=watch)


POLL = 0.25  # seconds between looks at a running command's cancel marker


def _watch_marker(proc: Any, marker: str, tag: str | None) -> None:
    import os
    import signal
    import time

    while proc.poll() is None:
        if os.path.exists(marker):
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # its own session: the whole group
            except OSError:
                pass
            if tag is not None:
                from flowbridge.toolkit import procs

                procs.reap({procs.TASK_ENV: tag})  # what left the group
            return
        time.sleep(POLL)


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


_CONTAINERS = (list, tuple, dict, set, frozenset)
_NO_ARGUMENTS = pickle.dumps(((), {}), protocol=pickle.HIGHEST_PROTOCOL)


def _refers_to(handle_type: type, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> bool:
    """Whether a handle sits in the arguments, also inside lists, tuples, dicts and sets
    (where the engine puts native dependencies)."""
    stack: list[Any] = [args, kwargs] if kwargs else [args]
    while stack:
        item = stack.pop()
        if type(item) is handle_type:
            return True
        if isinstance(item, _CONTAINERS):
            stack.extend(item.values() if isinstance(item, dict) else item)
    return False


def pack_arguments(args: tuple[Any, ...], kwargs: Mapping[str, Any], handle_type: type) -> tuple[bytes, list[Any]]:
    """The arguments as bytes, and the upstream handles (of ``handle_type``) they hold, in order."""
    if not args and not kwargs:
        return _NO_ARGUMENTS, []
    call = (args, dict(kwargs))
    if not _refers_to(handle_type, args, kwargs):
        return cloudpickle.dumps(call, protocol=pickle.HIGHEST_PROTOCOL), []
    deps: list[Any] = []
    buffer = io.BytesIO()
    _Pickler(buffer, handle_type, deps).dump(call)
    return buffer.getvalue(), deps


_SCALARS = (int, float, complex, str, bytes, bool, type(None), range, types.ModuleType, types.BuiltinFunctionType)


class Functions:
    """Functions as bytes, each pickled again only when what it captures may have changed.

    A function is reused from the cache while its code, defaults, closure cells and
    the globals it names are the very same objects, and every one of them is
    immutable or travels by reference. Anything else (a global list, a helper that
    itself travels by value) is pickled afresh on every call, as other adapters do.
    """

    def __init__(self) -> None:
        self._cache: weakref.WeakKeyDictionary[Any, tuple[tuple[Any, ...], bytes]] = weakref.WeakKeyDictionary()

    def dumps(self, func: Any) -> bytes:
        worker.ship_by_value(func)
        key = self._snapshot(func)
        if key is not None:
            hit = self._cache.get(func)
            if hit is not None and len(hit[0]) == len(key) and all(a is b for a, b in zip(hit[0], key, strict=True)):
                return hit[1]
        data: bytes = cloudpickle.dumps(func, protocol=pickle.HIGHEST_PROTOCOL)
        if key is not None:
            self._cache[func] = (key, data)
        return data

    def _snapshot(self, func: Any) -> tuple[Any, ...] | None:
        """The objects a function's pickle is made of, or None when it must not be reused."""
        if type(func) is not types.FunctionType or func.__dict__:
            return None
        values: list[Any] = [func.__code__, func.__defaults__, func.__kwdefaults__]
        for value in func.__defaults__ or ():
            if not self._fixed(value):
                return None
        for value in (func.__kwdefaults__ or {}).values():
            if not self._fixed(value):
                return None
        for cell in func.__closure__ or ():
            try:
                value = cell.cell_contents
            except ValueError:  # an empty cell
                return None
            if not self._fixed(value):
                return None
            values.append(value)
        scope = func.__globals__
        for name in _global_names(func.__code__):
            value = scope.get(name, _MISSING)
            if value is not _MISSING and not self._fixed(value):
                return None
            values.append(value)
        return tuple(values)

    def _fixed(self, value: Any) -> bool:
        if isinstance(value, _SCALARS):
            return True
        if type(value) in (tuple, frozenset):
            return all(self._fixed(v) for v in value)
        if isinstance(value, (types.FunctionType, type)):  # fixed when it travels by reference
            module = sys.modules.get(getattr(value, "__module__", "") or "")
            return (
                module is not None
                and module.__name__ != "__main__"
                and "<locals>" not in value.__qualname__
                and module.__name__ not in cloudpickle.list_registry_pickle_by_value()
            )
        return False


_MISSING = object()


@functools.lru_cache(maxsize=1024)
def _global_names(code: types.CodeType) -> tuple[str, ...]:
    """Names a code object (and the code it nests) may read as globals: a superset is fine."""
    names = list(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names.extend(_global_names(const))
    return tuple(dict.fromkeys(names))
