"""ConcurrentExecutionBackend: any concurrent.futures.Executor as a flowbridge backend."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import signal
from typing import TYPE_CHECKING, Any

from . import worker
from .adapter import Adapter, TaskSpec

if TYPE_CHECKING:
    import subprocess


class ConcurrentExecutionBackend(Adapter):
    """Runs tasks on a ``concurrent.futures.Executor``: threads, processes, executorlib, loky...

    ``ConcurrentExecutionBackend()`` owns a thread pool, ``(processes=True)`` a
    process pool; ``(executor)`` uses one you made and leaves it open at shutdown.
    On an executor that is not a thread pool, function tasks travel by value
    (cloudpickle), so functions from ``__main__`` and closures run there too.
    """

    name = "concurrent"
    capabilities = frozenset({"functions", "executables", "async_functions"})
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
        self._threads = isinstance(executor, concurrent.futures.ThreadPoolExecutor)
        self._procs: dict[str, subprocess.Popen[str]] = {}

    def __repr__(self) -> str:
        return f"<ConcurrentExecutionBackend {type(self.executor).__name__}{'' if self._owned else ' (yours)'}>"

    def submit(self, task: TaskSpec) -> Any:
        if task.resources is not None:
            self.check_resources(task)
        if task.func is not None:
            if self._threads:
                return self.executor.submit(worker.call, task.func, task.args, task.kwargs)
            return self.executor.submit(worker.call_pickled, worker.dumps(task.func, task.args, task.kwargs))
        assert task.command is not None
        if not self._threads:
            return self.executor.submit(worker.run_command, task.command)
        return self._submit_killable(task)

    def _submit_killable(self, task: TaskSpec) -> concurrent.futures.Future[str]:
        """A command on a thread whose process is killed when the task is cancelled."""
        uid, procs, command = task.uid, self._procs, task.command
        assert command is not None
        outer: concurrent.futures.Future[str] = _KillOnCancel(procs, uid)
        inner = self.executor.submit(worker.run_command, command, on_start=lambda p: procs.__setitem__(uid, p))

        def copy(done: concurrent.futures.Future[str]) -> None:
            procs.pop(uid, None)
            try:
                if done.cancelled():
                    outer.cancel()
                elif done.exception() is not None:
                    outer.set_exception(done.exception())
                else:
                    outer.set_result(done.result())
            except concurrent.futures.InvalidStateError:
                pass  # cancelled meanwhile

        outer._inner = inner  # type: ignore[attr-defined]
        inner.add_done_callback(copy)
        return outer

    async def shutdown(self, *, cancel: bool = True) -> None:
        if cancel:
            for proc in list(self._procs.values()):
                _kill(proc)
        if self._owned:
            await asyncio.to_thread(self.executor.shutdown, wait=True, cancel_futures=cancel)


class _KillOnCancel(concurrent.futures.Future):  # type: ignore[type-arg]
    def __init__(self, procs: dict[str, subprocess.Popen[str]], uid: str) -> None:
        super().__init__()
        self._procs, self._uid = procs, uid

    def cancel(self) -> bool:
        inner = getattr(self, "_inner", None)
        if inner is not None:
            inner.cancel()
        proc = self._procs.pop(self._uid, None)
        if proc is not None:
            _kill(proc)
        return super().cancel()  # never marked running, so the stdlib lets it go


def _kill(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # the command runs in its own session
    except (ProcessLookupError, PermissionError):
        pass
