"""The thread pool flowbridge owns: ThreadPoolExecutor's semantics, daemon threads.

``concurrent.futures.ThreadPoolExecutor`` joins its threads at interpreter exit,
so a task body that runs for a minute holds a Ctrl-C'd program for a minute.
Python cannot stop a running thread; it can decline to wait for one. The engine
finishes an unclosed synchronous engine's tasks at exit itself, so nothing
submitted is lost by this.
"""

from __future__ import annotations

import concurrent.futures
import os
import queue
import threading
from collections.abc import Callable
from typing import Any

__all__ = ["DaemonThreadPool"]


class DaemonThreadPool(concurrent.futures.Executor):
    """Up to ``max_workers`` daemon threads, started on demand and reused."""

    def __init__(self, max_workers: int | None = None, thread_name_prefix: str = "flowbridge") -> None:
        self._max_workers = max_workers or min(32, (os.cpu_count() or 1) + 4)
        self._prefix = thread_name_prefix
        self._work: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self._closed = False
        self.busy = 0  # threads running a task now (updated without a lock: a hint, not a count to rely on)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> concurrent.futures.Future[Any]:
        future: concurrent.futures.Future[Any] = concurrent.futures.Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self._work.put((future, fn, args, kwargs))
            if not self._idle.acquire(blocking=False) and len(self._threads) < self._max_workers:
                t = threading.Thread(target=self._run, name=f"{self._prefix}_{len(self._threads)}", daemon=True)
                t.start()
                self._threads.append(t)
        return future

    def _run(self) -> None:
        work, idle = self._work, self._idle
        while True:
            item = work.get()
            if item is None:
                work.put(None)  # wake the next thread too
                return
            future, fn, args, kwargs = item
            del item
            if future.set_running_or_notify_cancel():
                self.busy += 1
                try:
                    result = fn(*args, **kwargs)
                except BaseException as exc:
                    future.set_exception(exc)
                    del exc
                else:
                    future.set_result(result)
                    del result
                self.busy -= 1
            del future, fn, args, kwargs
            idle.release()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._closed = True
            if cancel_futures:
                while True:
                    try:
                        item = self._work.get_nowait()
                    except queue.Empty:
                        break
                    if item is not None:
                        item[0].cancel()
            self._work.put(None)
        if wait:
            for t in self._threads:
                t.join()
