"""ConcurrentExecutionBackend: any concurrent.futures.Executor as a flowbridge backend."""

from __future__ import annotations

import concurrent.futures
import logging
import os
import signal
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import worker
from ._errors import WorkerLost
from ._pool import DaemonThreadPool
from .adapter import Adapter, TaskSpec
from .toolkit import procs
from .toolkit.blocking import off_loop
from .toolkit.checks import count

if TYPE_CHECKING:
    import subprocess


_log = logging.getLogger("flowbridge.concurrent")


def _ignore_sigint() -> None:
    """Pool processes leave Ctrl-C to the driver, which cancels and kills them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _tag_process(owner: str) -> None:
    _ignore_sigint()
    os.environ[procs.OWNER_ENV] = owner


class ConcurrentExecutionBackend(Adapter):
    """Runs tasks on a ``concurrent.futures.Executor``: threads, processes, executorlib, loky...

    ``ConcurrentExecutionBackend()`` owns a thread pool, ``(processes=True)`` a
    process pool; ``(executor)`` uses one you made and leaves it open at shutdown.
    On an executor that is not a thread pool, function tasks travel by value
    (cloudpickle), so functions from ``__main__`` and closures run there too.
    Commands of executable tasks are killed with their process tree on cancel,
    timeout and ``shutdown(cancel=True)``. A running Python function cannot be
    stopped on threads (``shutdown(cancel=True)`` stops waiting for it); on an
    owned process pool, ``shutdown(cancel=True)`` kills the pool's processes.
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
        name: str | None = None,
    ) -> None:
        self._named(name)
        if not isinstance(processes, bool):
            raise TypeError(f"ConcurrentExecutionBackend(processes={processes!r}): processes must be True or False")
        count("ConcurrentExecutionBackend", "max_workers", max_workers, optional=True, error=TypeError)
        self._tag = f"concurrent-{os.getpid()}-{id(self):x}"
        self._processes = processes
        if executor is None:
            self._owned = True
            executor = self._new_executor(max_workers)
        elif isinstance(executor, type):
            raise TypeError(
                f"ConcurrentExecutionBackend takes an executor instance: write {executor.__name__}(), "
                f"not {executor.__name__}"
            )
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
        self._threads = isinstance(executor, (concurrent.futures.ThreadPoolExecutor, DaemonThreadPool))
        self._procs: dict[str, subprocess.Popen[str]] = {}  # commands on threads, by task uid
        self._reaper: procs.Reaper | None = None

    def _new_executor(self, max_workers: int | None) -> concurrent.futures.Executor:
        if self._processes:
            self.owner_tag = self._tag
            return concurrent.futures.ProcessPoolExecutor(max_workers, initializer=_tag_process, initargs=(self._tag,))
        return DaemonThreadPool(max_workers, thread_name_prefix="flowbridge")

    def __repr__(self) -> str:
        return f"<ConcurrentExecutionBackend {type(self.executor).__name__}{'' if self._owned else ' (yours)'}>"

    def submit(self, task: TaskSpec) -> Any:
        if task.resources is not None:
            self.check_resources(task)
        if self._threads and task.func is not None:  # the hot path: no wrapper at all
            return self.executor.submit(worker.timed_call, task.func, task.args, task.kwargs)
        return self._relay(task)

    def _relay(self, task: TaskSpec) -> concurrent.futures.Future[Any]:
        """Submit through a relay: a dead pool becomes WorkerLost, a cancelled command is killed."""
        procs_, uid = self._procs, task.uid
        fn: Callable[..., Any]
        args: tuple[Any, ...]
        kwargs: dict[str, Any]
        if task.func is not None:
            fn, args, kwargs = worker.timed_call_pickled, (worker.dumps(task.func, task.args, task.kwargs),), {}
        else:
            if self._reaper is None and self._owned:  # commands outlive a killed driver otherwise
                self._reaper = procs.Reaper(self._tag)
            fn, args = worker.timed_run_command, (task.command,)
            kwargs = {"task": f"{self._tag}:{uid}", "owner": self._tag}
            if self._threads:
                kwargs["on_start"] = lambda p: procs_.__setitem__(uid, p)
        try:
            inner = self.executor.submit(fn, *args, **kwargs)
        except concurrent.futures.BrokenExecutor:
            if not self._owned:
                raise WorkerLost(f"the executor is broken (a worker died); task {task.name} ({uid}) not run")
            _log.warning("a worker of the process pool died; starting a new pool")
            self.executor.shutdown(wait=False)
            self.executor = self._new_executor(self._max_workers)
            inner = self.executor.submit(fn, *args, **kwargs)
        return _Relay(inner, self, uid, task.command is not None)

    def _kill_command(self, uid: str) -> None:
        proc = self._procs.pop(uid, None)
        if proc is not None:
            _killpg(proc)
        elif not self._threads:
            procs.reap({procs.TASK_ENV: f"{self._tag}:{uid}"}, wait=0)

    async def shutdown(self, *, cancel: bool = True) -> None:
        if cancel:
            for proc in list(self._procs.values()):
                _killpg(proc)
            await off_loop(procs.reap, {procs.OWNER_ENV: self._tag})  # commands on pool processes
        if self._owned:
            if cancel:
                self._abandon_running()
            executor = self.executor
            await off_loop(lambda: executor.shutdown(wait=not cancel, cancel_futures=cancel))
        if self._reaper is not None:
            self._reaper.stop()

    def _abandon_running(self) -> None:
        executor = self.executor
        if isinstance(executor, DaemonThreadPool):
            busy = executor.busy
            if busy > 0:
                _log.warning(
                    "%d function task(s) still running on threads were abandoned: Python cannot stop a "
                    "running thread (use processes=True for bodies that must be stoppable)",
                    busy,
                )
        elif isinstance(executor, concurrent.futures.ProcessPoolExecutor):
            for proc in list((getattr(executor, "_processes", None) or {}).values()):
                proc.kill()

    def kill(self) -> None:
        for proc in list(self._procs.values()):
            _killpg(proc)
        super().kill()
        if self._reaper is not None:
            self._reaper.stop()


class _Relay(concurrent.futures.Future):  # type: ignore[type-arg]
    """Mirrors a pool future; cancelling it also kills the task's command, if any."""

    def __init__(
        self, inner: concurrent.futures.Future[Any], backend: ConcurrentExecutionBackend, uid: str, command: bool
    ) -> None:
        super().__init__()
        self._inner, self._backend, self._uid, self._command = inner, backend, uid, command
        inner.add_done_callback(self._copy)

    def _copy(self, inner: concurrent.futures.Future[Any]) -> None:
        self._backend._procs.pop(self._uid, None)
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
        if not self._inner.cancel() and self._command and not self._inner.done():
            self._backend._kill_command(self._uid)
        return super().cancel()  # never marked running, so the stdlib lets it go


def _killpg(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the command runs in its own session
    except (ProcessLookupError, PermissionError):
        pass
