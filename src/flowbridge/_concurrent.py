"""ConcurrentExecutionBackend: any concurrent.futures.Executor as a flowbridge backend."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import worker
from ._errors import WorkerLost
from .adapter import Adapter, TaskSpec

if TYPE_CHECKING:
    import subprocess


_log = logging.getLogger("flowbridge.concurrent")


class ConcurrentExecutionBackend(Adapter):
    """Runs tasks on a ``concurrent.futures.Executor``: threads, processes, executorlib, loky...

    ``ConcurrentExecutionBackend()`` owns a thread pool, ``(processes=True)`` a
    process pool; ``(executor)`` uses one you made and leaves it open at shutdown.
    On an executor that is not a thread pool, function tasks travel by value
    (cloudpickle), so functions from ``__main__`` and closures run there too.
    """

    name = "concurrent"
    capabilities = frozenset({"functions", "executables", "async_functions", "worker_lost"})
    supported_resources = frozenset()

    def __init__(
        self,
        executor: concurrent.futures.Executor | None = None,
        *,
        processes: bool = False,
        max_workers: int | None = None,
    ) -> None:
        if executor is None:
            if processes:
                executor = concurrent.futures.ProcessPoolExecutor(max_workers)
            else:
                executor = concurrent.futures.ThreadPoolExecutor(max_workers, thread_name_prefix="flowbridge")
            self._owned = True
        elif not callable(getattr(executor, "submit", None)):
            raise TypeError(
                f"ConcurrentExecutionBackend takes a concurrent.futures.Executor, not {type(executor).__name__}"
            )
        else:
            if processes or max_workers is not None:
                raise TypeError(
                    "processes= and max_workers= size an executor flowbridge creates; yours is already made"
                )
            self._owned = False
        self.executor = executor
        self._max_workers = max_workers
        self._threads = isinstance(executor, concurrent.futures.ThreadPoolExecutor)
        self._procs: dict[str, subprocess.Popen[str]] = {}

    def __repr__(self) -> str:
        return f"<ConcurrentExecutionBackend {type(self.executor).__name__}{'' if self._owned else ' (yours)'}>"

    def submit(self, task: TaskSpec) -> Any:
        if task.resources is not None:
            self.check_resources(task)
        if self._threads:
            if task.func is not None:  # the hot path: no wrapper at all
                return self.executor.submit(worker.call, task.func, task.args, task.kwargs)
            return self._relay(task, kill=True)
        return self._relay(task, kill=False)

    def _relay(self, task: TaskSpec, *, kill: bool) -> concurrent.futures.Future[Any]:
        """Submit through a relay: a dead pool becomes WorkerLost, a cancelled command is killed."""
        procs, uid = self._procs, task.uid
        fn: Callable[..., Any]
        args: tuple[Any, ...]
        kwargs: dict[str, Any]
        if task.func is not None:
            fn, args, kwargs = worker.call_pickled, (worker.dumps(task.func, task.args, task.kwargs),), {}
        else:
            on_start = (lambda p: procs.__setitem__(uid, p)) if kill else None
            fn, args, kwargs = worker.run_command, (task.command,), {"on_start": on_start} if kill else {}
        try:
            inner = self.executor.submit(fn, *args, **kwargs)
        except concurrent.futures.BrokenExecutor:
            if not self._owned:
                raise WorkerLost(f"the executor is broken (a worker died); task {task.name} ({uid}) not run")
            _log.warning("a worker of the process pool died; starting a new pool")
            self.executor.shutdown(wait=False)
            self.executor = type(self.executor)(self._max_workers)  # type: ignore[call-arg]
            inner = self.executor.submit(fn, *args, **kwargs)
        return _Relay(inner, procs, uid)

    async def shutdown(self, *, cancel: bool = True) -> None:
        if cancel:
            for proc in list(self._procs.values()):
                _kill(proc)
        if self._owned:
            await asyncio.to_thread(self.executor.shutdown, wait=True, cancel_futures=cancel)


class _Relay(concurrent.futures.Future):  # type: ignore[type-arg]
    """Mirrors a pool future; cancelling it also kills the task's command, if any."""

    def __init__(self, inner: concurrent.futures.Future[Any], procs: dict[str, Any], uid: str) -> None:
        super().__init__()
        self._inner, self._procs, self._uid = inner, procs, uid
        inner.add_done_callback(self._copy)

    def _copy(self, inner: concurrent.futures.Future[Any]) -> None:
        self._procs.pop(self._uid, None)
        try:
            if inner.cancelled():
                super().cancel()
            elif (exc := inner.exception()) is not None:
                if isinstance(exc, concurrent.futures.BrokenExecutor):
                    lost = WorkerLost(f"the worker process running task {self._uid} died ({exc})")
                    lost.__cause__ = exc
                    exc = lost
                self.set_exception(exc)
            else:
                self.set_result(inner.result())
        except concurrent.futures.InvalidStateError:
            pass  # cancelled meanwhile

    def cancel(self) -> bool:
        self._inner.cancel()
        proc = self._procs.pop(self._uid, None)
        if proc is not None:
            _kill(proc)
        return super().cancel()  # never marked running, so the stdlib lets it go


def _kill(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the command runs in its own session
    except (ProcessLookupError, PermissionError):
        pass
