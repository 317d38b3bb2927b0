"""The handle of one task: a Future that mirrors an executorlib future, in flowbridge's terms."""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable
from typing import Any

from executorlib.standalone.interactive.communication import ExecutorlibSocketError

from flowbridge import WorkerLost

_InvalidState = concurrent.futures.InvalidStateError


class OnceFuture(concurrent.futures.Future):  # type: ignore[type-arg]
    """An executorlib future that is run at most once.

    When a block-allocated worker dies under a task, executorlib puts the task back in
    the queue for the next worker, which a task that kills its worker then kills too,
    one worker after another. Started a second time, this future fails with
    WorkerLost instead, and executorlib skips it.
    """

    _fb_started = False

    def set_running_or_notify_cancel(self) -> bool:
        if not self._fb_started:
            self._fb_started = True
            return super().set_running_or_notify_cancel()
        self._state = "PENDING"
        try:
            self.set_exception(WorkerLost("its executorlib worker process died while running it"))
        except _InvalidState:
            pass
        return False


def submit_block(scheduler: Any, fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> OnceFuture:
    """Put a call in a BlockAllocationTaskScheduler's queue, as its ``submit`` does, with a run-once future."""
    future = OnceFuture()
    queue = scheduler._future_queue
    if queue is None:
        raise RuntimeError("the executorlib pool is shut down")
    queue.put({"fn": fn, "args": args, "kwargs": kwargs, "future": future})
    return future


class Handle(concurrent.futures.Future):  # type: ignore[type-arg]
    """Follows an executorlib future; ``cancel()`` also kills the task's command (by its tag).

    A queued executorlib future is cancelled with it; one already running on a
    block-allocated worker keeps its worker busy until it returns (executorlib cannot
    stop it), but its value is dropped.
    """

    def __init__(self, label: str, live: set[Handle], why: Callable[[Any], str | None],
                 kill: Callable[[], object] | None = None) -> None:
        super().__init__()
        self.label = label
        self.inner: concurrent.futures.Future[Any] | None = None
        self._live = live
        self._why = why
        self._kill = kill
        live.add(self)

    def follow(self, inner: concurrent.futures.Future[Any]) -> None:
        self.inner = inner
        inner.add_done_callback(self._settle)

    def _settle(self, inner: concurrent.futures.Future[Any]) -> None:
        self._live.discard(self)
        if self.done():
            return
        try:
            if inner.cancelled():
                super().cancel()
                return
            exc = inner.exception()
            if exc is None:
                self.set_result(inner.result())
                return
            if isinstance(exc, (ExecutorlibSocketError, WorkerLost)):
                why = self._why(inner)
                lost = WorkerLost(
                    f"task {self.label}: its executorlib worker died" + (f" ({why})" if why else "")
                )
                lost.__cause__ = exc
                exc = lost
            self.set_exception(exc)
        except _InvalidState:  # cancelled meanwhile
            pass

    def fail(self, exc: BaseException) -> None:
        self._live.discard(self)
        try:
            self.set_exception(exc)
        except _InvalidState:
            pass

    def cancel(self) -> bool:
        if self.done():
            return False
        self._live.discard(self)
        if self.inner is not None:
            self.inner.cancel()
        if self._kill is not None:
            threading.Thread(target=self._kill, name="flowbridge-executorlib-kill", daemon=True).start()
        return super().cancel()

    def __repr__(self) -> str:
        return f"<executorlib task {self.label} {self._state}>"
