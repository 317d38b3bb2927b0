"""The handle of one task on Dask, and what a finished Dask future means to flowbridge."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from distributed import Future
from distributed.scheduler import KilledWorker

from flowbridge import WorkerLost

#: Dask cancels futures itself for these reasons: the work is lost, not cancelled by anyone.
LOST_REASONS = frozenset({"scheduler-connection-lost", "scheduler-restart"})


class DaskHandle(asyncio.Future):  # type: ignore[type-arg]
    """An asyncio future standing for one Dask future, which it keeps alive.

    Resolved with a ``Remote`` (the value stays on the workers), failed with the
    task's error; ``cancel()`` reaches ``client.cancel``.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        key: str,
        future: Future[Any],
        on_cancel: Callable[[DaskHandle], None],
        tag: str | None = None,
    ) -> None:
        super().__init__(loop=loop)
        self.key = key
        self.tag = tag  # FLOWBRIDGE_TASK of an executable task's command
        self.dask_future: Future[Any] | None = future
        self.watcher: asyncio.Task[None] | None = None
        self._on_cancel = on_cancel

    def cancel(self, msg: Any = None) -> bool:
        if self.done():
            return False
        self._on_cancel(self)
        return super().cancel(msg)

    def drop(self, msg: Any = None) -> None:
        """Cancelled by Dask, not by us: no need to tell Dask."""
        if not self.done():
            super().cancel(msg)

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
