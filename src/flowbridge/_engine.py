"""WorkflowEngine: decorators, adapters and the event loop that ties them together."""

from __future__ import annotations

import asyncio
import contextvars
import itertools
import logging
import os
import sys
import threading
import time
import uuid
import warnings
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, overload

from ._errors import EngineClosed, FlowbridgeError
from ._record import TaskRecord
from ._stats import Stats
from ._task import TaskFuture
from ._template import TaskTemplate, check_options, check_target
from .adapter import Adapter, Backend
from .toolkit.blocking import off_loop

if TYPE_CHECKING:
    from ._graph import Graph
    from ._report import Report

_log = logging.getLogger("flowbridge.engine")

#: Seconds a backend's ``shutdown(cancel=True)`` gets before the engine kills what it started
#: and abandons it, so that ``shutdown(cancel=True)`` as a whole returns within 10 s.
CANCEL_BUDGET = 7.0
#: The same for a plain ``shutdown()``, counted once every task has ended.
CLOSE_BUDGET = 60.0
KILL_BUDGET = 2.0


class WorkflowEngine:
    """Turns functions into tasks and hands them to one or more execution backends.

    ``WorkflowEngine()`` runs on local threads, or on the profile named by
    ``FLOWBRIDGE_PROFILE``; ``backend=`` takes an adapter or a registry name
    ("concurrent", "dask", "parsl", "radical", "executorlib"); ``backends=``
    takes several by route name, the first being the default, and so does a list
    ``backend=[b1, b2]`` whose routes are the adapters' ``name=``. The engine works
    inside a running loop (``await WorkflowEngine.create()``, ``async with``) and
    from plain synchronous code, where it runs its own loop on a thread.

    ``dry_run=True`` puts a :class:`NoopExecutionBackend` on every route: the graph
    is built and walked, no task body runs. ``uid`` names the engine (and the
    directory of its captured output); ``work_dir`` is where that directory goes.
    ``record=False`` keeps no :class:`TaskRecord` (``report()`` and ``graph()``
    then raise): only what running the tasks needs. ``progress=True`` shows live
    counts by state and backend on stderr when it is a terminal (default: on
    when ``FLOWBRIDGE_PROGRESS=1``, which ``flowbridge run --progress`` sets).
    """

    def __init__(
        self,
        backend: Adapter | str | Sequence[Adapter | str] | None = None,
        *,
        backends: Mapping[str, Adapter | str] | None = None,
        dry_run: bool = False,
        uid: str | None = None,
        work_dir: str | os.PathLike[str] | None = None,
        record: bool = True,
        progress: bool | None = None,
    ) -> None:
        from ._progress import Progress, shown, wanted
        from ._registry import resolve_backends

        if not isinstance(record, bool):
            raise TypeError(f"WorkflowEngine(record={record!r}): record is True or False")
        #: every task's record, in call order; None under record=False
        self._records: list[TaskRecord] | None = [] if record else None
        if not isinstance(dry_run, bool):
            raise TypeError(f"WorkflowEngine(dry_run={dry_run!r}): dry_run is True or False")
        if uid is not None and (not isinstance(uid, str) or not uid or os.sep in uid):
            raise ValueError(f"WorkflowEngine(uid={uid!r}): uid is a non-empty str without {os.sep!r}")
        if work_dir is not None and not isinstance(work_dir, (str, os.PathLike)):
            raise TypeError(f"WorkflowEngine(work_dir={work_dir!r}): work_dir is a path (str or Path)")
        #: This engine's id: names its captured-output directory (``work_dir/uid``).
        self.uid: str = uid or f"flowbridge.{uuid.uuid4().hex[:8]}"
        self.work_dir = work_dir
        self._capture_path: str | None = None  # made on first use, see _capture_dir
        self.dry_run = dry_run
        self._adapters: dict[str, Backend]
        if dry_run:
            if backend is not None and backends is not None:
                raise TypeError("WorkflowEngine takes backend= or backends=, not both")
            from ._noop import dry_run_backends

            self._adapters, self._replaced = dry_run_backends(backend, backends), None
        else:
            self._adapters, self._replaced = resolve_backends(backend, backends)
        self._default = next(iter(self._adapters))
        self._scope: contextvars.ContextVar[str | None] = contextvars.ContextVar(
            f"flowbridge_workflow.{self.uid}", default=None
        )
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
        self._progress = Progress(self) if wanted(progress) and shown() else None
        self._lifetime: asyncio.Task[None] | None = None
        self._cancelling = False
        self._lifetime_ended = False
        self._keep_backends = False
        if _tracked is not None:
            _tracked.append(self)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._bind(loop)

    def __repr__(self) -> str:
        names = ", ".join(f"{k}={getattr(a, 'name', a)!r}" for k, a in self._adapters.items())
        return f"<WorkflowEngine {names}{' closed' if self._closed else ''}>"

    @property
    def backends(self) -> dict[str, Backend]:
        """The adapters by route name; the first is the default."""
        return dict(self._adapters)

    @property
    def backend(self) -> Backend:
        """The default backend (the first one given)."""
        return self._adapters[self._default]

    @property
    def records(self) -> list[TaskRecord]:
        """Every task's :class:`TaskRecord`, in call order (a copy of the list)."""
        return list(self._kept_records("records"))

    def _kept_records(self, what: str) -> list[TaskRecord]:
        if self._records is None:
            raise RuntimeError(
                f"flow.{what}(): this engine keeps no task records (WorkflowEngine(record=False)); "
                f"create it with record=True (the default)"
            )
        return self._records

    def report(self) -> Report:
        """What ran, where and when, so far: a :class:`Report` over every task's record."""
        from ._report import Report

        return Report(self._snapshot("report"), name=self.uid)

    def graph(self) -> Graph:
        """The dependency graph of every task called so far: DOT, Mermaid, or an image via graphviz."""
        from ._graph import Graph

        return Graph(self._snapshot("graph"))

    def _snapshot(self, what: str) -> list[TaskRecord]:
        """The records, once the loop has taken in every call made before (from another thread, say)."""
        records = self._kept_records(what)
        loop = self._loop
        if (
            self._thread is not None
            and loop is not None
            and loop.is_running()
            and asyncio._get_running_loop() is not loop
        ):
            done = threading.Event()
            loop.call_soon_threadsafe(done.set)  # after the _begin of every earlier call
            done.wait(5)
        return list(records)

    def workflow_scope(self, workflow_id: str | None = None) -> WorkflowScope:
        """``async with flow.workflow_scope("etl-42"):`` tags every task called inside with that id.

        Without an id one is made (``wf-<hex8>``); the ``as`` target receives it. A
        ``workflow_id=`` given to one call wins over the scope; tasks called in a
        block with no scope around them carry the block's uid. ``with`` works too.
        """
        if workflow_id is not None and (not isinstance(workflow_id, str) or not workflow_id):
            raise TypeError(f"workflow_scope({workflow_id!r}): the workflow id is a non-empty str")
        return WorkflowScope(self._scope, workflow_id or f"wf-{uuid.uuid4().hex[:8]}")

    def _capture_dir(self) -> str:
        """Where executable tasks with ``capture_stdio=True`` write: ``<work_dir>/<uid>``, made on first use.

        ``work_dir`` defaults to ``$FLOWBRIDGE_RUN_DIR``, else ``<tmp>/flowbridge-<user>``,
        never the working directory. It is the user's output: shutdown leaves it.
        """
        if self._capture_path is None:
            from .adapter import run_root

            path = os.path.join(os.fspath(self.work_dir) if self.work_dir is not None else run_root(), self.uid)
            os.makedirs(path, exist_ok=True)
            self._capture_path = path
        return self._capture_path

    # -- construction and lifetime -------------------------------------------------------

    @classmethod
    async def create(
        cls,
        backend: Adapter | str | Sequence[Adapter | str] | None = None,
        dry_run: bool = False,
        *,
        backends: Mapping[str, Adapter | str] | None = None,
        uid: str | None = None,
        work_dir: str | os.PathLike[str] | None = None,
        record: bool = True,
        progress: bool | None = None,
    ) -> WorkflowEngine:
        """Build an engine (same arguments as the constructor) and wait until its backends are up."""
        engine = cls(
            backend, backends=backends, dry_run=dry_run, uid=uid, work_dir=work_dir, record=record, progress=progress
        )
        await engine.start()
        return engine

    @classmethod
    def from_profile(cls, name: str, **options: Any) -> WorkflowEngine:
        """An engine on the backend that profile ``name`` of ``flowbridge.toml`` describes.

        ``options`` are the constructor's other keywords (``record=``, ``uid=``, ...).
        A profile named by ``FLOWBRIDGE_PROFILE`` still wins, as it does over any
        backend a script builds. Errors name the file, the profile and the key.
        """
        from ._config import backend_from_profile

        if "backend" in options or "backends" in options:
            raise TypeError("WorkflowEngine.from_profile(name) takes its backend from the profile, not backend=")
        return cls(backend_from_profile(name), **options)

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
        if self._progress is not None:
            self._progress.start(loop)
        self._starting = loop.create_task(self._start_backends(), name="flowbridge-start")
        if self._thread is None:  # on the user's loop: follow its end
            self._lifetime = loop.create_task(self._watch_lifetime(), name="flowbridge-lifetime")
            _on_user_loops.add(self)
            if "ipykernel" in sys.modules:
                self._wake()

    def _wake(self) -> None:
        """In a Jupyter kernel, wake its loop once a second while the engine is open.

        ipykernel delivers an interrupt only when its loop next wakes (ipykernel
        #881): a cell awaiting a minute-long task would see its interrupt after a
        minute. One no-op callback a second brings that under a second.
        """
        if not self._closed and self._loop is not None and not self._loop.is_closed():
            self._loop.call_later(1.0, self._wake)

    def _loop_for_call(self) -> asyncio.AbstractEventLoop:
        """The engine's loop, bound on first use: the caller's running loop or a private one."""
        loop = self._loop
        if (loop is not None and loop.is_closed()) or (self._closed and self._lifetime_ended):
            raise EngineClosed(
                "this WorkflowEngine was used on an event loop that has closed (an earlier asyncio.run()); "
                "create the engine inside the coroutine that uses it, one engine per asyncio.run()"
            )
        if self._closed:
            raise EngineClosed(
                "this WorkflowEngine has been shut down; create a new WorkflowEngine to submit more tasks"
            )
        if loop is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = asyncio.new_event_loop()
                self._thread = threading.Thread(target=loop.run_forever, name="flowbridge-loop", daemon=True)
                self._thread.start()
                loop.call_soon_threadsafe(self._bind, loop)
                self._loop = loop
                _finish_at_exit(self)
                return loop
            self._bind(loop)
        return loop

    async def _start_backends(self) -> None:
        try:
            await asyncio.gather(*(_start(a) for a in self._adapters.values()))
        except asyncio.CancelledError:  # shut down (or interrupted) while starting: not a failure
            self._start_error = EngineClosed("the engine was shut down while its backends were starting")
            backlog, self._backlog = self._backlog, []
            for task in backlog:
                task.cancel()
            raise
        except BaseException as exc:
            names = ", ".join(repr(getattr(a, "name", a)) for a in self._adapters.values())
            error: BaseException = exc
            if not isinstance(exc, FlowbridgeError):  # ours already say what to fix
                error = FlowbridgeError(f"backend {names} failed to start: {type(exc).__name__}: {exc}")
                error.__cause__ = exc
            self._start_error = error
            backlog, self._backlog = self._backlog, []
            for task in backlog:
                task._fail(error, final=True)
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
        if self._progress is not None:
            self._progress.settled(task)
        if self._idle is not None and not self._live and not self._idle.done():
            self._idle.set_result(None)

    def _adapter_for(self, route: str | None, task_name: str) -> Backend:
        if route is None:
            return self._adapters[self._default]
        try:
            return self._adapters[route]
        except KeyError:
            raise ValueError(
                f"task {task_name}: backend={route!r} is not one of this engine's backends "
                f"({', '.join(map(repr, self._adapters))}); pass backends={{{route!r}: ...}} to WorkflowEngine"
            ) from None

    async def shutdown(
        self, *, cancel: bool = False, timeout: float | None = None, skip_execution_backend: bool = False
    ) -> None:
        """Finish (or with ``cancel=True`` cancel) every task, then close the backends.

        Idempotent. A plain shutdown logs (INFO) which tasks it waits for; with
        ``timeout=`` it waits that many seconds, then cancels what is left. With
        ``cancel=True`` it returns within 10 s whatever runs: a backend that does
        not close within its budget has what it started killed and is abandoned,
        with a WARNING. Backends close only what they created; a client, cluster
        or executor the user brought stays up. ``skip_execution_backend=True``
        (asyncflow's name) closes the engine and leaves its backends up, for the
        next engine to use (``WorkflowEngine(backend=flow.backend)``, on the same
        event loop); whoever uses them last shuts them down.
        """
        _check_timeout(timeout)
        self._closed = True
        self._keep_backends = self._keep_backends or bool(skip_execution_backend)
        loop = self._loop
        if loop is None or loop.is_closed():  # never used, or already closed
            return
        if asyncio.get_running_loop() is loop:
            await self._shutdown_once(cancel, timeout)
            return
        if self._thread is None:
            raise RuntimeError("this engine runs on another event loop: shut it down from that loop")
        await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._shutdown_once(cancel, timeout), loop))
        self._stop_thread()

    def close(
        self, *, cancel: bool = False, timeout: float | None = None, skip_execution_backend: bool = False
    ) -> None:
        """Synchronous shutdown, for code that does not run an event loop itself. Idempotent."""
        _check_timeout(timeout)
        self._closed = True
        self._keep_backends = self._keep_backends or bool(skip_execution_backend)
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if self._thread is None:
            raise RuntimeError("this engine runs on your event loop: use `await engine.shutdown()`")
        future = asyncio.run_coroutine_threadsafe(self._shutdown_once(cancel, timeout), loop)
        try:
            future.result()
        except KeyboardInterrupt:  # Ctrl-C while waiting: cancel instead, still bounded
            asyncio.run_coroutine_threadsafe(self._shutdown_once(True, None), loop).result()
            self._stop_thread()
            raise
        self._stop_thread()

    async def _shutdown_once(self, cancel: bool, timeout: float | None) -> None:
        if self._closing is None:
            self._closing = asyncio.ensure_future(self._shutdown(cancel, timeout))
        elif cancel and not self._cancelling:  # a waiting shutdown, now asked to cancel what is left
            self._cancel_all()
        await asyncio.shield(self._closing)

    def _cancel_all(self) -> None:
        self._cancelling = True
        for task in list(self._live):
            task.cancel()
        if self._idle is not None and not self._idle.done():
            self._idle.set_result(None)

    async def _shutdown(self, cancel: bool, timeout: float | None) -> None:
        if self._live and not cancel:
            shown = ", ".join(f"{t.uid} ({t.name})" for t in itertools.islice(self._live, 10))
            more = f" and {len(self._live) - 10} more" if len(self._live) > 10 else ""
            _log.info(
                "shutdown waits for %d unfinished task(s): %s%s; shutdown(cancel=True) cancels them, "
                "timeout= bounds the wait",
                len(self._live),
                shown,
                more,
            )
            self._idle = asyncio.get_running_loop().create_future()
            done, _ = await asyncio.wait({self._idle}, timeout=timeout)
            if not done and self._live:
                _log.warning(
                    "shutdown: %d task(s) still unfinished after %g s, cancelling them: %s",
                    len(self._live),
                    timeout,
                    ", ".join(f"{t.uid} ({t.name})" for t in self._live),
                )
                cancel = True
        if cancel or self._cancelling:
            cancel = True
            self._cancel_all()
        if self._starting is not None and not self._starting.done():
            self._starting.cancel()
            await asyncio.wait({self._starting})
        budget = CANCEL_BUDGET if cancel else CLOSE_BUDGET
        closing = [] if self._keep_backends else list(self._adapters.values())
        if self._replaced is not None and self._replaced.__dict__.get("_fb_starting") is not None:
            closing.append(self._replaced)  # started by the script, then replaced by a profile
        await asyncio.gather(*(_close_adapter(a, cancel, budget) for a in closing))
        if self._lifetime is not None and not self._lifetime.done():
            self._lifetime.cancel()
        if self._stats is not None:
            self._stats.write(list(self._adapters.values()))
        if self._progress is not None:
            self._progress.close()

    async def _watch_lifetime(self) -> None:
        """Sleeps until the engine's loop is torn down (``asyncio.run`` cancels every task at its end).

        Reached with the engine still open, it says so (ResourceWarning) and shuts
        it down with cancel=True, so a script that returned or was interrupted
        without ``shutdown()`` leaves nothing running behind it.
        """
        try:
            await asyncio.get_running_loop().create_future()
        except asyncio.CancelledError:
            if self._closing is None:  # not cancelled by shutdown(): the loop is being torn down
                await self._end_with_loop()
            raise

    async def _end_with_loop(self) -> None:
        self._lifetime_ended = True
        try:
            _warn_unclosed(self, "its event loop ended")
        finally:
            self._closed = True
            await self._shutdown_once(True, None)

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

    @overload
    def prompt_task(self, func: Callable[..., Any], /, **options: Any) -> TaskTemplate: ...
    @overload
    def prompt_task(self, func: None = None, /, **options: Any) -> Callable[[Callable[..., Any]], TaskTemplate]: ...

    def prompt_task(self, func: Any = None, /, **options: Any) -> Any:
        """Make a function that returns a prompt str a task: a backend with "prompts" answers it."""
        return self._decorate("prompt_task", "prompt", func, options)

    def _decorate(self, decorator: str, kind: Any, func: Any, options: dict[str, Any]) -> Any:
        options = check_options(decorator, options)
        if func is not None:
            check_target(decorator, func)
            return TaskTemplate(self, func, kind, options)

        def wrap(fn: Any) -> TaskTemplate:
            check_target(decorator, fn)
            return TaskTemplate(self, fn, kind, options)

        return wrap


class WorkflowScope:
    """What ``flow.workflow_scope()`` returns: a context manager, ``async with`` or ``with``."""

    def __init__(self, var: contextvars.ContextVar[str | None], workflow_id: str) -> None:
        self._var, self.workflow_id = var, workflow_id
        self._tokens: list[contextvars.Token[str | None]] = []

    def __enter__(self) -> str:
        self._tokens.append(self._var.set(self.workflow_id))
        return self.workflow_id

    def __exit__(self, *exc: object) -> None:
        self._var.reset(self._tokens.pop())

    async def __aenter__(self) -> str:
        return self.__enter__()

    async def __aexit__(self, *exc: object) -> None:
        self.__exit__()


async def _start(adapter: Backend) -> None:
    starter = getattr(adapter, "ensure_started", None) or adapter.start
    await starter()


async def _close_adapter(adapter: Backend, cancel: bool, budget: float) -> None:
    """``adapter.shutdown``, bounded: past ``budget`` s, kill what it started and abandon it."""
    name = getattr(adapter, "name", adapter)
    closing = asyncio.ensure_future(adapter.shutdown(cancel=cancel))
    done, _ = await asyncio.wait({closing}, timeout=budget)
    if done:
        exc = None if closing.cancelled() else closing.exception()
        if exc is None:
            return
        reason = f"failed to shut down ({type(exc).__name__}: {exc})"
    else:
        closing.cancel()
        reason = f"did not shut down within {budget:g} s"
    kill = getattr(adapter, "kill", None)
    left = ""
    if kill is not None:
        try:
            await off_loop(kill, timeout=KILL_BUDGET)
        except Exception as exc:
            left = f"; killing its processes failed too ({type(exc).__name__}: {exc})"
    _log.warning("backend %r %s; killed the processes it started and abandoned it%s", name, reason, left)


def _check_timeout(timeout: float | None) -> None:
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout < 0):
        raise ValueError(f"shutdown(timeout={timeout!r}): timeout is a number of seconds >= 0, or None")


def _warn_unclosed(engine: WorkflowEngine, why: str) -> None:
    live = sorted(engine._live, key=lambda t: t.uid)
    tasks = ", ".join(f"{t.uid} ({t.name})" for t in live[:10]) + (" ..." if len(live) > 10 else "")
    warnings.warn(
        f"{engine!r} was never shut down and {why}; "
        + (f"{len(live)} unfinished task(s) were cancelled: {tasks}. " if live else "")
        + "Use `async with WorkflowEngine(...)` or `await flow.shutdown()`",
        ResourceWarning,
        stacklevel=1,
    )


#: Every engine made while ``flowbridge run --report`` runs a script; None otherwise.
_tracked: list[WorkflowEngine] | None = None


def track_engines() -> list[WorkflowEngine]:
    """From now on, remember every engine created (``flowbridge run --report``); returns that list."""
    global _tracked
    _tracked = []
    return _tracked


def stop_tracking() -> None:
    global _tracked
    _tracked = None


#: Engines bound to a loop of the user's; see shutdown_left_open.
_on_user_loops: weakref.WeakSet[WorkflowEngine] = weakref.WeakSet()


async def shutdown_left_open() -> None:
    """Shut down (cancel=True) the engines of this loop nobody shut down, as the loop's end would.

    ``flowbridge run`` calls it when the script's body ends, normally or by Ctrl-C,
    before ``asyncio.run`` cancels every task of the loop: a framework's own tasks
    (a Dask client's) are still alive then, so the backends close as cleanly as
    after an explicit ``shutdown()``.
    """
    loop = asyncio.get_running_loop()
    left = [e for e in list(_on_user_loops) if e._loop is loop and e._closing is None]
    await asyncio.gather(*(e._end_with_loop() for e in left))


#: Synchronous engines (own loop thread) still open; finished at interpreter exit.
_open_sync: weakref.WeakSet[WorkflowEngine] = weakref.WeakSet()
_exit_hook_pid = 0


def _finish_at_exit(engine: WorkflowEngine) -> None:
    """Remember a synchronous engine, so interpreter exit finishes (or cancels) its tasks."""
    global _exit_hook_pid
    _open_sync.add(engine)
    if not _exit_hook_pid:
        _exit_hook_pid = os.getpid()
        # Before concurrent.futures joins its threads, as its own exit hook is registered earlier.
        threading._register_atexit(_close_open_engines)  # type: ignore[attr-defined]


def _close_open_engines() -> None:
    """At exit: as concurrent.futures does, let submitted work finish; after Ctrl-C, cancel it."""
    if os.getpid() != _exit_hook_pid:  # a forked child (a pool process) inherits the hook, not the engines
        return
    interrupted = getattr(sys, "last_type", None) is KeyboardInterrupt
    for engine in list(_open_sync):
        if engine._closed or engine._loop is None or engine._loop.is_closed():
            continue
        try:
            engine.close(cancel=interrupted)
        except KeyboardInterrupt:
            pass  # close() has cancelled and closed by then
        except Exception as exc:
            _log.warning("%r could not finish its tasks at exit: %s", engine, exc)
