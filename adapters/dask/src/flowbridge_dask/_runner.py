"""A function task's trip to a Dask worker, with Dask futures kept visible to Dask.

The call travels by value (cloudpickle, like :func:`flowbridge.worker.dumps`), so
functions from ``__main__`` and closures run on the workers. Dask futures found
anywhere in the arguments are pulled out while pickling and passed to ``submit``
as top-level arguments: Dask then resolves them on the cluster and hands the
runner their values, which take the futures' places when the call is unpickled.
"""

from __future__ import annotations

import io
import pickle
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import cloudpickle  # type: ignore[import-untyped]
from distributed import Future

from flowbridge.worker import Ran, ship_by_value, timed_call, unwrap

__all__ = ["pack", "run_function"]

_local = threading.local()


class _Packer(cloudpickle.Pickler):  # type: ignore[misc]
    """cloudpickle that swaps each Dask future for a placeholder and collects the futures."""

    def __init__(self, file: io.BytesIO) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.natives: list[Future[Any]] = []
        self._index: dict[int, int] = {}

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, Future):
            index = self._index.get(id(obj))
            if index is None:
                index = self._index[id(obj)] = len(self.natives)
                self.natives.append(obj)
            return _native_value, (index,)
        return super().reducer_override(obj)


def pack(func: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any]) -> tuple[bytes, list[Future[Any]]]:
    """The call as bytes, and the Dask futures it refers to (in placeholder order)."""
    ship_by_value(func)  # e.g. a test module that a freshly started worker could not import
    buffer = io.BytesIO()
    packer = _Packer(buffer)
    packer.dump((func, tuple(args), dict(kwargs)))
    return buffer.getvalue(), packer.natives


def _native_value(index: int) -> Any:
    return unwrap(_local.values[index])  # an upstream's result is a Ran: its value takes the place


def run_function(payload: bytes, *values: Any) -> Ran:
    """On the worker: rebuild the call with the dependencies' values, then run it, measured."""
    if values:
        _local.values = values
        try:
            func, args, kwargs = pickle.loads(payload)
        finally:
            _local.values = None
    else:
        func, args, kwargs = pickle.loads(payload)
    return timed_call(func, args, kwargs)
