"""WorkflowEngine: decorators, adapters and the event loop that ties them together."""

from __future__ import annotations

import asyncio
import itertools
import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, overload

from ._errors import EngineClosed, FlowbridgeError
from ._stats import Stats
from ._task import TaskFuture
from ._template import TaskTemplate, check_options, check_target
from .adapter import Adapter

_log = logging.getLogger("flowbridge.engine")


class WorkflowEngine:
    """Turns functions into tasks and hands them to one or more execution backends.

    ``WorkflowEngine()`` runs on local threads, or on the profile named by
    ``FLOWBRIDGE_PROFILE``; ``backend=`` takes an adapter or a registry name
    ("concurrent", "dask", "parsl", "radical", "executorlib"); ``backends=``
    takes several by route name, the first being the default. The engine works
    inside a running loop (``await WorkflowEngine.create()``, ``async with``) and
    from plain synchronous code, where it runs its own loop on a thread.
    """

    def __init__(
        self,
        backend: Adapter | str | None = None,
        *,
        backends: Mapping[str, Adapter | str] | None = None,
    ) -> None:
        from ._registry import resolve_backends

        self._adapters: dict[str, Any] = resolve_backends(backend, backends)
        self._default = next(iter(self._adapters))
        self._counter = itertools.count(1)
        self._live: set[TaskFuture] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = False
        self._start_error: BaseException | None = None
        self._starting: asyncio.Task[None] | None = None
        self._backlog: list[TaskFuture] = []
        self._closed = False
        self._closing: asyncio.Future[None] | None = None
        self._idle: asyncio.Future[None] | None = None
        self._stats = Stats.from_env()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._bind(loop)

    def __repr__(self) -> str:
        names = ", ".join(f"{k}={getattr(a, 'name', a)!r}" for k, a in self._adapters.items())
        return f"<WorkflowEngine {names}{' closed' if self._closed else ''}>"

    @property
    def backends(self) -> dict[str, Any]:
        """The adapters by route name; the first is the default."""
        return dict(self._adapters)

    # -- construction and lifetime -------------------------------------------------------

    @classmethod
    async def create(
        cls, backend: Adapter | str | None = None, *, backends: Mapping[str, Adapter | str] | None = None
    ) -> WorkflowEngine:
        """Build an engine and wait until its backends are up."""
        engine = cls(backend, backends=backends)
        await engine.start()
        return engine

    async def start(self) -> None:
        """Wait until every backend is up; raises the error of one that failed to start."""
        loop = self._loop_for_call()
        if asyncio.get_running_loop() is not loop:
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self.start(), loop))
            return
        await asyncio.shield(self._starting)  # type: ignore[arg-type]
        if self._start_error is not None:
            raise self._start_error

    async def __aenter__(self) -> WorkflowEngine:
        await self.start()
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        await self.shutdown(cancel=exc_type is not None)

    def __enter__(self) -> WorkflowEngine:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.close(cancel=exc_type is not None)

    def _bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._starting = loop.create_task(self._start_backends(), name="flowbridge-start")

    def _loop_for_call(self) -> asyncio.AbstractEventLoop:
        """The engine's loop, bound on first use: the caller's running loop or a private one."""
        if self._closed:
            raise EngineClosed(
                "this WorkflowEngine has been shut down; create a new WorkflowEngine to submit more tasks"
            )
        loop = self._loop
        if loop is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=loop.run_forever, name="flowbridge-loop", daemon=True)
                self._thread.start()
                loop.call_soon_threadsafe(self._bind, loop)
                self._loop = loop
                return loop
            self._bind(loop)
        return loop

    async def _start_backends(self) -> None:
        try:
            await asyncio.gather(*(_start(a) for a in self._adapters.values()))
        except BaseException as exc:
            names = ", ".join(repr(getattr(a, "name", a)) for a in self._adapters.values())
            error = FlowbridgeError(f"backend {names} failed to start: {type(exc).__name__}: {exc}")
            error.__cause__ = exc
            self._start_error = error
            backlog, self._backlog = self._backlog, []
            for task in backlog:
                task._fail(error, final=True)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        self._ready = True
        if self._stats is not None:
            self._stats.ready = time.perf_counter()
        backlog, self._backlog = self._backlog, []
        for task in backlog:
            if task._fb.value == "PENDING":
                task._run()

    def _launch(self, task: TaskFuture) -> None:
        if self._ready:
            task._run()
        elif self._start_error is not None:
            task._fail(self._start_error, final=True)
        else:
            self._backlog.append(task)

    def _forget(self, task: TaskFuture) -> None:
        self._live.discard(task)
        if self._stats is not None:
            self._stats.settled(task._fb.value)
        if self._idle is not None and not self._live and not self._idle.done():
            self._idle.set_result(None)

    def _adapter_for(self, route: str | None, task_name: str) -> Any:
        if route is None:
            return self._adapters[self._default]
        try:
            return self._adapters[route]
        except KeyError:
            raise ValueError(
                f"task {task_name}: backend={route!r} is not one of this engine's backends "
                f"({', '.join(map(repr, self._adapters))}); pass backends={{{route!r}: ...}} to WorkflowEngine"
            ) from None

    async def shutdown(self, *, cancel: bool = False) -> None:
        """Finish (or with ``cancel=True`` cancel) every task, then close the backends.

        Idempotent. Backends close only what they created; a client, cluster or
        executor the user brought stays up.
        """
        self._closed = True
        loop = self._loop
        if loop is None or loop.is_closed():  # never used, or already closed
            return
        if asyncio.get_running_loop() is loop:
            await self._shutdown_once(cancel)
            return
        if self._thread is None:
            raise RuntimeError("this engine runs on another event loop: shut it down from that loop")
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._shutdown_once(cancel), loop))
        self._stop_thread()

    def close(self, *, cancel: bool = False) -> None:
        """Synchronous shutdown, for code that does not run an event loop itself. Idempotent."""
        self._closed = True
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if self._thread is None:
            raise RuntimeError("this engine runs on your event loop: use `await engine.shutdown()`")
        asyncio.run_coroutine_threadsafe(self._shutdown_once(cancel), loop).result()
        self._stop_thread()

    async def _shutdown_once(self, cancel: bool) -> None:
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._shutdown(cancel))
        elif cancel:  # a waiting shutdown, now asked to cancel what is left
            for task in list(self._live):
                task.cancel()
        await asyncio.shield(self._closing)

    async def _shutdown(self, cancel: bool) -> None:
        if self._live:
            if cancel:
                for task in list(self._live):
                    task.cancel()
            else:
                self._idle = asyncio.get_running_loop().create_future()
                if self._live:
                    await self._idle
        if self._starting is not None:
            if not self._starting.done():
                self._starting.cancel()
            await asyncio.gather(self._starting, return_exceptions=True)
        results = await asyncio.gather(
            *(_shutdown_adapter(a, cancel) for a in self._adapters.values()), return_exceptions=True
        )
        for adapter, result in zip(self._adapters.values(), results, strict=True):
            if isinstance(result, BaseException):
                _log.warning("backend %r did not shut down cleanly: %r", getattr(adapter, "name", adapter), result)
        if self._stats is not None:
            self._stats.write([getattr(a, "name", str(a)) for a in self._adapters.values()])

    def _stop_thread(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None and self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            thread.join()
            self._loop.close()

    # -- decorators --------------------------------------------------------------------

    @overload
    def function_task(self, func: Callable[..., Any], /, **options: Any) -> TaskTemplate: ...
    @overload
    def function_task(self, func: None = None, /, **options: Any) -> Callable[[Callable[..., Any]], TaskTemplate]: ...

    def function_task(self, func: Any = None, /, **options: Any) -> Any:
        """Make a function (``def`` or ``async def``) a task that runs on the backend."""
        return self._decorate("function_task", "function", func, options)

    @overload
    def executable_task(self, func: Callable[..., Any], /, **options: Any) -> TaskTemplate: ...
    @overload
    def executable_task(self, func: None = None, /, **options: Any) -> Callable[[Callable[..., Any]], TaskTemplate]: ...

    def executable_task(self, func: Any = None, /, **options: Any) -> Any:
        """Make a function that returns a command a task: the command runs on the backend."""
        return self._decorate("executable_task", "executable", func, options)

    @overload
    def block(self, func: Callable[..., Any], /, **options: Any) -> TaskTemplate: ...
    @overload
    def block(self, func: None = None, /, **options: Any) -> Callable[[Callable[..., Any]], TaskTemplate]: ...

    def block(self, func: Any = None, /, **options: Any) -> Any:
        """Make an async function a block: a composite workflow run on the driver's loop."""
        return self._decorate("block", "block", func, options)

    def _decorate(self, decorator: str, kind: Any, func: Any, options: dict[str, Any]) -> Any:
        options = check_options(decorator, options)
        if func is not None:
            check_target(decorator, func)
            return TaskTemplate(self, func, kind, options)

        def wrap(fn: Any) -> TaskTemplate:
            check_target(decorator, fn)
            return TaskTemplate(self, fn, kind, options)

        return wrap


async def _start(adapter: Any) -> None:
    starter = getattr(adapter, "ensure_started", None) or adapter.start
    await starter()


async def _shutdown_adapter(adapter: Any, cancel: bool) -> None:
    await adapter.shutdown(cancel=cancel)
