"""The handle of one task on Dask: the one way from a finished Dask future to a settled handle.

The handle hears of its Dask future's end on the engine's loop. A client on that loop
is waited on there, on the future's own state (as ``await future`` does: no thread);
any other client calls back from its own loop (``add_done_callback``), and the call
crosses over with ``call_soon_threadsafe``. Either way :meth:`DaskHandle._settle`
reads the outcome and resolves the handle with a ``Remote``, fails it with the
task's error, or cancels it.
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import TYPE_CHECKING, Any

from distributed import Future
from distributed.scheduler import KilledWorker

from flowbridge import WorkerLost
from flowbridge.adapter import Remote

if TYPE_CHECKING:
    from ._bridge import ClientBridge

#: Dask cancels futures itself for these reasons: the work is lost, not cancelled by anyone.
LOST_REASONS = frozenset({"scheduler-connection-lost", "scheduler-restart"})
_WAITING = ("pending", "lost")  # "lost": the value went with a worker; Dask recomputes it


class DaskHandle(asyncio.Future):  # type: ignore[type-arg]
    """An asyncio future standing for one Dask future, which it keeps alive.

    Resolved with a ``Remote`` (the value stays on the workers), failed with the
    task's error; ``cancel()`` reaches ``client.cancel`` (and kills an executable
    task's command). Listed in ``bridge.inflight`` until it ends.
    """

    def __init__(self, bridge: ClientBridge, key: str, future: Future[Any], tag: str | None = None) -> None:
        super().__init__(loop=bridge.loop)
        self.key = key
        self.tag = tag  # FLOWBRIDGE_TASK of an executable task's command
        self.dask_future = future
        self._bridge = bridge
        self._watcher: asyncio.Task[None] | None = None
        bridge.inflight[key] = self
        if bridge.same_loop:
            self._watcher = bridge.loop.create_task(self._wait())
        else:
            future.add_done_callback(self._ended_elsewhere)

    # -- hearing of the end ------------------------------------------------------------

    async def _wait(self) -> None:
        state: Any = self.dask_future._state  # what Future.__await__ waits on too
        while state.status in _WAITING:
            await state.wait()
        self._settle()

    def _ended_elsewhere(self, _: Future[Any]) -> None:
        """On Dask's callback thread."""
        try:
            self._loop.call_soon_threadsafe(self._ended_here)
        except RuntimeError:  # the engine's loop is closed: nobody is waiting any more
            pass

    def _ended_here(self) -> None:
        if self.done():
            return
        if self.dask_future.status in _WAITING:  # lost or retried since the callback
            self.dask_future.add_done_callback(self._ended_elsewhere)
            return
        self._settle()

    def _settle(self) -> None:
        """The Dask future has an outcome: hand it to the engine (the value stays on the workers)."""
        self._bridge.inflight.pop(self.key, None)
        if self.done():
            return
        status, error = outcome(self.dask_future)
        if status == "finished":
            self.set_result(Remote(partial(self._bridge.fetch, self.dask_future, self.key)))
        elif error is not None and (status == "error" or isinstance(error, WorkerLost)):
            self.set_exception(error)
        else:
            super().cancel()  # cancelled by Dask, not by us: no need to tell Dask

    # -- ending it from here -----------------------------------------------------------

    def cancel(self, msg: Any = None) -> bool:
        if self.done():
            return False
        self._stop()
        return super().cancel(msg)

    def fail(self, error: BaseException) -> None:
        """Fail with ``error`` (found by flowbridge, not Dask) and stop the Dask task."""
        if not self.done():
            self._stop()
            self.set_exception(error)

    def forget(self) -> None:
        """Stop waiting on the Dask future here (its client is going away)."""
        if self._watcher is not None:
            self._watcher.cancel()

    def _stop(self) -> None:
        self._bridge.inflight.pop(self.key, None)
        self.forget()
        self._bridge.cancel(self.dask_future)
        if self.tag is not None:
            self._bridge.kill_commands(self.tag)

    def __repr__(self) -> str:
        return f"<DaskHandle {self.key} {'done' if self.done() else 'pending'}>"


def outcome(future: Future[Any]) -> tuple[str, BaseException | None]:
    """``(status, error)`` of a Dask future that left the pending state.

    The error is read from the future's state, where the client stored it with the
    worker's traceback, so no round trip to the scheduler is needed.
    """
    state: Any = future._state  # the client keeps the error and traceback here
    status = state.status
    if status == "error":
        exc = state.exception
        if isinstance(exc, KilledWorker):
            lost = WorkerLost(f"Dask lost the worker(s) running task {future.key}: {exc}")
            lost.__cause__ = exc
            return status, lost
        if state.traceback is not None and isinstance(exc, BaseException):
            exc = exc.with_traceback(state.traceback)
        return status, exc
    if status == "cancelled":
        exc = state.exception
        reason = getattr(exc, "reason", None)
        if reason in LOST_REASONS:
            lost = WorkerLost(f"Dask dropped task {future.key}: {reason}")
            lost.__cause__ = exc
            return status, lost
        return status, exc
    return status, None
