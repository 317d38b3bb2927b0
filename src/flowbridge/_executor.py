"""Executor: the ``concurrent.futures`` interface of the executorlib paper, on any backend.

``with Executor(backend="local") as exe: exe.submit(sum, [1, 1]).result()`` works as
executorlib's does: ``submit`` takes a per-call ``resource_dict`` and futures passed
as arguments become dependencies. Behind it is a WorkflowEngine running its own
event loop on a thread, so plain synchronous code can use every flowbridge backend.
"""

from __future__ import annotations

import concurrent.futures
import threading
from collections.abc import Callable, Mapping
from typing import Any

from ._concurrent import ConcurrentExecutionBackend
from ._engine import WorkflowEngine
from ._resources import Resources
from ._task import TaskFuture

#: executorlib resource_dict keys -> Resources fields; anything else goes to ``extra``.
RESOURCE_KEYS = {"cores": "ranks", "threads_per_core": "threads", "gpus_per_core": "gpus"}


def resources_from_dict(resource_dict: Mapping[str, Any] | None) -> Resources | None:
    """Translate an executorlib ``resource_dict`` into a neutral Resources request."""
    if not resource_dict:
        return None
    fields: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for key, value in resource_dict.items():
        if key in RESOURCE_KEYS:
            fields[RESOURCE_KEYS[key]] = value
        else:
            extra[key] = value
    return Resources(**fields, extra=extra or None)


class _Future(concurrent.futures.Future):  # type: ignore[type-arg]
    """A concurrent future mirroring a TaskFuture; cancelling it cancels the task."""

    def __init__(self, task: TaskFuture) -> None:
        super().__init__()
        self.task = task
        task.get_loop().call_soon_threadsafe(task.add_done_callback, self._copy)

    def _copy(self, task: TaskFuture) -> None:
        if task.cancelled():
            super().cancel()
        elif task.exception() is not None:
            self.set_exception(task.exception())
        else:
            self.set_result(task.result())

    def cancel(self) -> bool:
        if self.done():
            return False
        self.task.get_loop().call_soon_threadsafe(self.task.cancel)
        return super().cancel()


class Executor(concurrent.futures.Executor):
    """A ``concurrent.futures.Executor`` whose tasks run on a flowbridge backend.

    ``backend="local"`` runs each call in a local worker process (as executorlib's
    local backend does); any other registry name, or an adapter, works too.
    """

    def __init__(self, backend: Any = "local", *, max_workers: int | None = None) -> None:
        if backend == "local":
            backend = ConcurrentExecutionBackend(processes=True, max_workers=max_workers)
        elif max_workers is not None:
            raise TypeError("max_workers= sizes the local backend; size other backends through their own options")
        self.engine = WorkflowEngine(backend=backend)
        self._templates: dict[tuple[Any, Resources | None], Any] = {}

    def submit(  # type: ignore[override]
        self, fn: Callable[..., Any], /, *args: Any, resource_dict: Mapping[str, Any] | None = None, **kwargs: Any
    ) -> concurrent.futures.Future[Any]:
        resources = resources_from_dict(resource_dict)
        key = (fn, resources)
        template = self._templates.get(key)
        if template is None:
            template = self._templates[key] = self.engine.function_task(fn, resources=resources)
        return _Future(template(*args, **kwargs))

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if wait:
            self.engine.close(cancel=cancel_futures)
        else:  # as concurrent.futures promises: return now, free resources when the work is done
            threading.Thread(
                target=self.engine.close, kwargs={"cancel": cancel_futures}, name="flowbridge-executor-close"
            ).start()
