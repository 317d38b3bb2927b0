"""A function task's trip to a Dask worker, with Dask futures kept visible to Dask.

The call travels through the core's codec (:mod:`flowbridge.toolkit.codec`): by
value, so functions from ``__main__`` and closures run on the workers, and with the
Dask futures found anywhere in the arguments pulled out and passed to ``submit`` as
top-level arguments. Dask resolves them on the cluster and hands the runner their
values, which take the futures' places when the call is unpacked.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from distributed import Future

from flowbridge.toolkit import codec
from flowbridge.worker import Ran, timed_call, unwrap

__all__ = ["pack", "run_function"]


def pack(func: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any]) -> tuple[bytes, list[Future[Any]]]:
    """The call as bytes, and the Dask futures it refers to (in placeholder order)."""
    return codec.pack_call(func, args, kwargs, native=Future)


def run_function(payload: bytes, *values: Any) -> Ran:
    """On the worker: rebuild the call with the dependencies' values, then run it, measured."""
    return timed_call(*codec.load_call(payload, map(unwrap, values)))  # an upstream's result is a Ran
