"""A framework-free adapter with native dependencies and remote results, for the core's own tests.

:class:`FakeBackend` behaves like Dask or Parsl in the two ways that change the
engine's path, without their start-up cost:

* **native dependencies**: ``native(handle)`` gives a :class:`NativeHandle`;
  a dependent is submitted as soon as its upstream is (not when it ends), and the
  fake waits for the upstream itself before running the body, as a framework's
  scheduler would. An upstream failure fails the dependent with the same error.
* **remote results**: a finished task resolves with ``Remote(fetch)``; the value
  is fetched only when something asks for it. ``lose=True`` makes every fetch
  fail, as when the worker holding the value died.

Bodies run on a small thread pool and are measured with
:func:`flowbridge.worker.timed_call`, so records carry worker times too.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import Any

from ..adapter import Adapter, Remote, TaskSpec
from ..worker import timed_call, unwrap

__all__ = ["FakeBackend", "LostValue", "NativeHandle"]


class LostValue(Exception):
    """A fetch from a :class:`FakeBackend` made with ``lose=True``."""


class NativeHandle:
    """What the fake hands dependents in place of a value: its own handle of the upstream."""

    __slots__ = ("future",)

    def __init__(self, future: concurrent.futures.Future[Any]) -> None:
        self.future = future


class FakeBackend(Adapter):
    """Threads behind a native-dependency, remote-result adapter (see the module docstring)."""

    name = "fake"
    capabilities = frozenset({"functions", "async_functions", "native_dependencies", "remote_results"})

    def __init__(self, *, lose: bool = False, workers: int = 4, name: str | None = None) -> None:
        self.lose = lose
        self.submitted = 0
        self._pool = concurrent.futures.ThreadPoolExecutor(workers, thread_name_prefix="fake")
        self._named(name)

    def submit(self, task: TaskSpec) -> Any:
        self.submitted += 1
        inner = self._pool.submit(self._run, task.func, task.args, task.kwargs)
        loop = asyncio.get_running_loop()
        handle: asyncio.Future[Any] = loop.create_future()

        def done(f: concurrent.futures.Future[Any]) -> None:
            loop.call_soon_threadsafe(self._settle, handle, f)

        inner.add_done_callback(done)
        handle.inner = inner  # type: ignore[attr-defined]
        return handle

    @staticmethod
    def _run(func: Any, args: Any, kwargs: Any) -> Any:
        # the framework's scheduler: wait for native upstreams, run on their values
        args = [unwrap(a.future.result()) if isinstance(a, NativeHandle) else a for a in args]
        kwargs = {k: unwrap(v.future.result()) if isinstance(v, NativeHandle) else v for k, v in kwargs.items()}
        return timed_call(func, args, kwargs)

    def _settle(self, handle: asyncio.Future[Any], inner: concurrent.futures.Future[Any]) -> None:
        if handle.done():
            return
        if inner.cancelled():
            handle.cancel()
        elif (exc := inner.exception()) is not None:
            handle.set_exception(exc)
        else:
            ran = inner.result()

            async def fetch() -> Any:
                if self.lose:
                    raise LostValue("the worker holding the value died")
                return ran

            handle.set_result(Remote(fetch))

    def native(self, handle: Any) -> NativeHandle:
        return NativeHandle(handle.inner)

    async def shutdown(self, *, cancel: bool = True) -> None:
        self._pool.shutdown(wait=not cancel, cancel_futures=cancel)
