"""The handle of one task: a Future that follows an AppFuture, translating Parsl's errors.

Parsl's ``AppFuture.cancel()`` raises, and a DataFlowKernel that is cleaned up leaves
its futures pending forever; this handle can always be cancelled, which settles it.
Dependents on the same DataFlowKernel wait on its :meth:`ParslTask.gate` instead (the
DataFlowKernel accepts any ``concurrent.futures.Future``): a future that Parsl's own
result settles, with the upstream's packed outcome (``bytes``, which Parsl's dill passes
on at the cost of a copy; the runner unpacks it on the worker), before this handle and
the engine hear of it. A cancelled upstream cancels its gate, so Parsl fails the
dependents (``DependencyError``) instead of running them.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Callable
from typing import Any

from parsl.app.errors import AppTimeout
from parsl.dataflow.errors import DependencyError
from parsl.executors.high_throughput.errors import ManagerLost
from parsl.executors.high_throughput.errors import WorkerLost as ParslWorkerLost

from flowbridge import DependencyFailed, TaskTimeout, WorkerLost
from flowbridge.toolkit import codec

_InvalidState = concurrent.futures.InvalidStateError


class ParslTask(concurrent.futures.Future):  # type: ignore[type-arg]
    """One submitted attempt; its ``repr`` names the flowbridge task, as Parsl's errors quote it."""

    def __init__(self, uid: str, name: str, live: set[ParslTask]) -> None:
        super().__init__()
        self.uid = uid
        self.name = name
        self.app_future: Any = None
        self.tag: str | None = None  # FLOWBRIDGE_TASK of an executable's command
        self.on_cancel: Callable[[ParslTask], None] | None = None
        self._gate: _Gate | None = None
        self._live = live
        live.add(self)

    def __repr__(self) -> str:
        return f"{self.uid} ({self.name})"

    def follow(self, app_future: Any) -> None:
        self.app_future = app_future
        app_future.add_done_callback(self._settle)

    def gate(self) -> concurrent.futures.Future[Any]:
        """The future a dependent on the same DataFlowKernel waits on (made on the first ask)."""
        gate = self._gate
        if gate is None:
            gate = self._gate = _Gate(repr(self))
            if self.cancelled():
                gate.cancel()
            elif self.app_future is not None and self.app_future.done():  # settled before the ask
                _settle_future(gate, self.app_future.result, self._error(self.app_future))
        return gate

    def _settle(self, app_future: Any) -> None:
        """On Parsl's thread: open the gate for dependents first, then settle this handle."""
        self._live.discard(self)
        if self.done():  # cancelled meanwhile (and so is the gate)
            return
        error = self._error(app_future)
        if self._gate is not None:
            _settle_future(self._gate, app_future.result, error)  # packed: bytes
        # The runner's packed worker.Ran, unpacked. Through super(): a cancelled upstream settles this
        # handle as cancelled without cancel()'s stopping of a command that never ran.
        _settle_future(super(), lambda: codec.load_outcome(app_future.result()), error)

    def _error(self, app_future: Any) -> BaseException | None:
        """What a settled AppFuture's error means for this task (None: it succeeded)."""
        exc = app_future.exception()
        return None if exc is None else translate(exc, self)

    def cancel(self) -> bool:
        """Settle the handle as cancelled and stop its command, if any (``on_cancel``).

        HTEX cannot stop a Python function a worker has started: its result is dropped.
        """
        self._live.discard(self)
        if not super().cancel():
            return False
        if self._gate is not None:
            self._gate.cancel()
        if self.on_cancel is not None:
            self.on_cancel(self)
        return True


class _Gate(concurrent.futures.Future):  # type: ignore[type-arg]
    """A :meth:`ParslTask.gate`; its ``repr`` names the upstream, as Parsl's DependencyError quotes it."""

    def __init__(self, label: str) -> None:
        super().__init__()
        self._label = label

    def __repr__(self) -> str:
        return self._label


def _settle_future(future: Any, value: Callable[[], Any], error: BaseException | None) -> None:
    """Settle ``future`` with ``value()``, or ``error`` (a CancelledError cancels it); once only."""
    try:
        if error is None:
            future.set_result(value())
        elif isinstance(error, concurrent.futures.CancelledError):  # an upstream was cancelled
            future.cancel()
        else:
            future.set_exception(error)
    except _InvalidState:  # cancelled meanwhile, or settled already
        pass


def translate(exc: BaseException, task: ParslTask) -> BaseException:
    """Parsl's error for a task, in flowbridge's terms; the task's own errors pass unchanged."""
    if isinstance(exc, DependencyError):
        cause, label = exc.dependent_exceptions_tids[0]
        if isinstance(cause, concurrent.futures.CancelledError):
            return cause
        # The engine builds the same error when it sees the upstream fail; both say the same.
        return DependencyFailed(repr(task), label, cause)
    if isinstance(exc, (ManagerLost, ParslWorkerLost)):
        lost = WorkerLost(f"task {task!r} lost its Parsl worker: {exc}")
        lost.__cause__ = exc
        return lost
    if isinstance(exc, AppTimeout):
        timeout = TaskTimeout(f"task {task!r} ran past its walltime and was stopped by Parsl")
        timeout.__cause__ = exc
        return timeout
    return exc
