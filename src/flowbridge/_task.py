"""TaskFuture: the future a task call returns, and the running of the task behind it.

A task is driven by callbacks only: its dependencies' completion callbacks launch
it (:mod:`flowbridge._dag`), its handle's completion callback settles it, and
settling releases its dependents. Nothing polls and no asyncio.Task is created
per function task. Every state change goes through
:func:`flowbridge._record.transition`, which writes the task's record.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import os
import shlex
import threading
import time
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

from ._command import as_command, as_prompt
from ._dag import NOT_NATIVE, Dependent
from ._errors import DependencyFailed, TaskFailed, TaskTimeout, UnsupportedResource
from ._inbox import inbox
from ._record import CANCELLED, DONE, FAILED, FINAL, PENDING, RUNNING, TaskRecord, TaskState, transition, value_lost
from .adapter import Remote, TaskSpec
from .worker import Ran

if TYPE_CHECKING:
    from ._engine import WorkflowEngine
    from ._template import TaskTemplate

__all__ = ["TaskFuture", "TaskState", "current_block"]

_NO_RETRY = (UnsupportedResource, DependencyFailed, TypeError)
_log = logging.getLogger("flowbridge.task")
_perf = time.perf_counter

#: The block whose body is running, so tasks it creates can be cancelled with it.
current_block: contextvars.ContextVar[TaskFuture | None] = contextvars.ContextVar("flowbridge_block", default=None)

_future_add_done_callback = asyncio.Future.add_done_callback
_future_result = asyncio.Future.result
_future_done = asyncio.Future.done
_future_cancel = asyncio.Future.cancel


class TaskFuture(Dependent):
    """The future of one task call: awaitable, cancellable, with ``uid`` and ``state``.

    It is an ``asyncio.Future`` of the engine's loop, so ``asyncio.gather``,
    ``wait_for``, ``wait`` and ``as_completed`` take it as it is. ``result(timeout)``
    also works from threads other than the loop's, blocking until the task ends.
    """

    __slots__ = (
        "_args",
        "_attempt",
        "_block",
        "_children",
        "_deps",
        "_engine",
        "_fb",
        "_fetching",
        "_handle",
        "_kwargs",
        "_native",
        "_native_deps",
        "_on_launch",
        "_on_settle",
        "_parked",
        "_pending",
        "_rec",
        "_remote",
        "_resources",
        "_spec",
        "_timer",
        "_tmpl",
        "_workflow_id",
        "uid",
    )

    def __init__(self, engine: WorkflowEngine, tmpl: TaskTemplate, uid: str) -> None:
        super().__init__(loop=engine._loop)
        self.uid = uid
        self._engine = engine
        self._tmpl = tmpl
        self._fb = PENDING
        self._handle: Any = None
        self._spec: TaskSpec | None = None
        self._attempt = 1
        self._pending = 0
        self._deps: list[Any] | None = None
        self._native_deps: set[TaskFuture] | None = None
        self._on_launch: list[TaskFuture] | None = None
        self._on_settle: list[TaskFuture] | None = None
        self._native: Any = NOT_NATIVE
        self._remote: Remote | None = None
        self._fetching = False
        self._parked: BaseException | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._children: set[TaskFuture] | None = None
        self._block: TaskFuture | None = None
        self._workflow_id: str | None = None
        self._resources: Any = None  # a call's own task_description, as Resources
        block = current_block.get()
        if block is not None and (block._engine is not engine or block._fb is not RUNNING):
            block = None
        if block is not None:
            self._block = block
            if block._children is None:
                block._children = set()
            block._children.add(self)
        records = engine._records
        if records is None:
            self._rec = None
        else:
            self._rec = record = TaskRecord(
                uid,
                tmpl.name,
                tmpl.kind,
                tmpl.route,
                tmpl.adapter_name,
                tmpl.backend_name,
                block.uid if block is not None else None,
            )
            records.append(record)

    # -- public surface --------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._tmpl.name

    @property
    def state(self) -> TaskState:
        return self._fb

    @property
    def record(self) -> TaskRecord | None:
        """What is known of this task's life (:class:`TaskRecord`); None under ``WorkflowEngine(record=False)``."""
        return self._rec

    @property
    def workflow_id(self) -> str | None:
        """The workflow tag: ``workflow_id=`` of the call, else the enclosing workflow_scope or block."""
        return self._workflow_id

    def cancel(self, msg: Any = None) -> bool:
        """Cancel the task, its backend work where the framework can, and its dependents."""
        if self._fb in FINAL:
            return False
        self._finish(CANCELLED)
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.cancel()
        if self._children:
            for child in list(self._children):
                child.cancel()
        super().cancel(msg)
        return True

    def __await__(self) -> Generator[Any, None, Any]:
        if self._remote is not None:
            self._demand()
        return super().__await__()

    __iter__ = __await__

    def add_done_callback(self, fn: Callable[[Any], object], *, context: contextvars.Context | None = None) -> None:
        if self._remote is not None:
            self._demand()
        _future_add_done_callback(self, fn, context=context)

    def result(self, timeout: float | None = None) -> Any:
        """The value; off the loop's thread, block up to ``timeout`` seconds for it."""
        if not _future_done(self):
            self._wait_off_loop(timeout)
        return _future_result(self)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        if not _future_done(self):
            self._wait_off_loop(timeout)
        return super().exception()

    def __repr__(self) -> str:
        return f"<TaskFuture {self.uid} {self._tmpl.name!r} {self._fb.value}>"

    def _wait_off_loop(self, timeout: float | None) -> None:
        loop = self.get_loop()
        if asyncio._get_running_loop() is loop:
            if self._remote is not None:
                self._demand()
            raise asyncio.InvalidStateError(
                f"task {self.uid} ({self.name}) has not finished: await it, or call "
                f".result() from a thread that does not run the engine's loop"
            )
        ready = threading.Event()
        loop.call_soon_threadsafe(self.add_done_callback, lambda _: ready.set())
        if not ready.wait(timeout):
            raise TimeoutError(f"task {self.uid} ({self.name}) did not finish within {timeout} s")

    def _run(self) -> None:
        """Dependencies are ready and the backend is up: start the task."""
        tmpl = self._tmpl
        try:
            args, kwargs = self._values()
            if tmpl.kind == "function":
                resources = self._resources or tmpl.resources
                self._submit(TaskSpec(self.uid, tmpl.name, "function", tmpl.func, args, kwargs, None, resources))
                return
            body = tmpl.func(*args, **kwargs)
        except BaseException as exc:
            self._fail(exc, final=True)
            return
        if tmpl.kind == "block":
            context = contextvars.copy_context()
            context.run(current_block.set, self)
            context.run(self._engine._scope.set, self._workflow_id or self.uid)
            self._watch(self.get_loop().create_task(body, context=context))
        elif asyncio.iscoroutine(body) and not inspect.isgenerator(body):
            self._start_body(body)
        else:
            self._body_done(body)

    def _start_body(self, body: Any) -> None:
        """An ``async def`` executable or prompt body: at once if it awaits nothing, else on a loop task.

        Most return their command without awaiting anything: run now, they are handed
        over in the order they were called, like function tasks. One that waits runs
        on its own asyncio Task (so ``asyncio.timeout`` and friends see a task of their own).
        """
        if not self._tmpl.awaits:
            try:
                body.send(None)
            except StopIteration as stop:
                self._body_done(stop.value)
                return
            except BaseException as exc:
                self._fail(exc, final=True)
                return
            body.close()  # unreachable: a coroutine that awaits nothing cannot suspend
            self._fail(RuntimeError(f"task {self.uid} ({self.name}): its body suspended without awaiting"), final=True)
            return
        transition(self, RUNNING)
        self._handle = command = self.get_loop().create_task(body)
        _future_add_done_callback(command, self._on_command)

    def _on_command(self, command: asyncio.Task) -> None:  # type: ignore[type-arg]
        if command is not self._handle:
            return
        self._handle = None
        if command.cancelled():
            self.cancel()
        elif command.exception() is not None:
            self._fail(command.exception(), final=True)
        else:
            self._body_done(command.result())

    def _body_done(self, body_result: Any) -> None:
        """An executable's body gave its command (a prompt task's, its prompt): hand it over."""
        tmpl = self._tmpl
        resources = self._resources or tmpl.resources
        try:
            if tmpl.kind == "prompt":
                prompt = as_prompt(body_result, self)
                self._submit(TaskSpec(self.uid, tmpl.name, "prompt", resources=resources, prompt=prompt))
                return
            command = as_command(body_result, self)
            if tmpl.capture_stdio and not self._engine.dry_run:
                command = _redirected(command, self._captured("stdout"), self._captured("stderr"))
        except (TypeError, OSError) as exc:
            self._fail(exc, final=True)
            return
        self._submit(TaskSpec(self.uid, tmpl.name, "executable", None, (), None, command, resources))

    def _captured(self, stream: str) -> str:
        return os.path.join(self._engine._capture_dir(), f"{self.uid}.{stream}")

    # -- running ----------------------------------------------------------------------

    def _submit(self, spec: TaskSpec) -> None:
        """Hand one attempt to the adapter and wait for its handle."""
        self._spec = spec
        handed = _perf()  # before submit: a thread may start the body before submit returns
        try:
            handle = self._tmpl.adapter.submit(spec)
        except BaseException as exc:
            self._fail(exc, final=True)
            return
        self._watch(handle, handed)
        # Kept even with no dependent yet: one created while this task runs can take it too.
        if "native_dependencies" in self._tmpl.adapter.capabilities:
            native = self._tmpl.adapter.native(handle)
            if native is not None:
                self._native = native
        if self._on_launch is not None:
            waiting, self._on_launch = self._on_launch, None
            for dependent in waiting:
                if dependent._fb is PENDING:
                    dependent._dep_launched(self)

    def _watch(self, handle: Any, handed: float | None = None) -> None:
        """Follow a running attempt: its completion settles the task, its timeout ends it.

        ``handed`` is when it was handed to the backend (perf_counter), now if None.
        """
        self._handle = handle
        record = self._rec
        if self._fb is PENDING:
            transition(self, RUNNING)
            if record is not None:
                if handed is not None:
                    record._t1 = handed  # RUNNING from the hand-over on
                record._submitted(record._t1, at_running=True)  # type: ignore[arg-type]
        elif record is not None:
            record._submitted(_perf() if handed is None else handed)
        if self._tmpl.timeout is not None:
            self._timer = self.get_loop().call_later(self._tmpl.timeout, self._on_timeout, handle)
        if isinstance(handle, asyncio.Future):
            _future_add_done_callback(handle, self._on_handle)
        else:
            handle.add_done_callback(self._on_handle_threadsafe)

    def _on_handle_threadsafe(self, handle: Any) -> None:
        inbox(self.get_loop()).put(self._on_handle, handle)  # batched: one loop wakeup for many

    def _on_handle(self, handle: Any) -> None:
        if handle is not self._handle:  # a stale attempt (timed out, cancelled, retried)
            return
        self._handle = None
        if handle.cancelled():
            self.cancel()
            return
        exc = handle.exception()
        if exc is None:
            self._succeed(self._measured(handle.result()))
            return
        if self._rec is not None and (ran := getattr(exc, "_fb_ran", None)) is not None:
            self._rec._worker_ran(ran)
        if self._tmpl.capture_stdio and isinstance(exc, TaskFailed):
            exc = self._with_captured_stderr(exc)
        if self._native_deps and self._unsettled_native():
            self._parked = exc  # the framework may report a dependency's error first
        elif failed := next((d for d in self._native_deps or () if d._fb is FAILED), None):
            self._fail_dependency(failed, failed._exception_of())  # the framework re-raised its error here
        else:
            self._fail(exc)

    def _measured(self, value: Any) -> Any:
        """The body's value; a worker.Ran's times and place go on the record first."""
        if type(value) is not Ran:
            return value
        if self._rec is not None:
            self._rec._worker_ran((value.started, value.finished, value.where))
        return value.get()

    def _with_captured_stderr(self, exc: TaskFailed) -> TaskFailed:
        err = self._captured("stderr")
        try:
            with open(err, "rb") as fh:
                fh.seek(max(0, os.fstat(fh.fileno()).st_size - 2000))
                tail = fh.read().decode(errors="replace")
        except OSError:
            tail = exc.stderr
        out = TaskFailed(f"{exc} (its output: {self._captured('stdout')}, {err})", exit_code=exc.exit_code, stderr=tail)
        out.__cause__ = exc.__cause__
        return out

    def _on_timeout(self, handle: Any) -> None:
        if handle is not self._handle:
            return
        self._handle = None
        handle.cancel()
        self._fail(TaskTimeout(f"task {self.uid} ({self.name}) timed out after {self._tmpl.timeout} s"))

    def _fail(self, exc: BaseException, *, final: bool = False) -> None:
        if self._fb in FINAL:
            return
        if (
            not final
            and self._attempt <= self._tmpl.retries
            and self._spec is not None
            and not isinstance(exc, _NO_RETRY)
        ):
            self._attempt += 1
            self._cancel_timer()
            if self._rec is not None:
                self._rec._attempt_failed(exc)
            _log.info(
                "task %s (%s) failed (%s: %s); retry %d of %d",
                self.uid,
                self.name,
                type(exc).__name__,
                exc,
                self._attempt - 1,
                self._tmpl.retries,
            )
            self._spec.attempt = self._attempt
            self._submit(self._spec)
            return
        if isinstance(exc, (StopIteration, StopAsyncIteration)):
            exc = RuntimeError(f"task {self.uid} ({self.name}) raised {type(exc).__name__}")
        self._finish(FAILED, exc)
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.cancel()
        if self._children:
            for child in list(self._children):
                child.cancel()
        self.set_exception(exc)

    def _succeed(self, value: Any) -> None:
        if self._fb in FINAL:
            return
        if type(value) is Remote:
            self._remote = value
            self._finish(DONE)
            if self._callbacks:  # awaited (or a dependent waits for the value) already: fetch now
                self._demand()
            return
        if self._tmpl.capture_stdio and not self._engine.dry_run:
            value = self._captured("stdout")  # asyncflow's contract: the result is where stdout went
        self._finish(DONE)
        self.set_result(value)

    def _finish(self, state: TaskState, error: BaseException | None = None) -> None:
        """Mark the task final and tell everything that watches it."""
        transition(self, state, error)
        self._cancel_timer()
        self._engine._forget(self)
        if self._block is not None and self._block._children is not None:
            self._block._children.discard(self)
        watchers, self._on_settle = self._on_settle, None
        if watchers:
            loop = self.get_loop()
            for dependent in watchers:
                loop.call_soon(dependent._dep_settled, self)
        self._on_launch = None  # those dependents heard of the end through _on_settle
        self._args = self._kwargs = None  # type: ignore[assignment]
        self._deps = None
        self._native_deps = None  # let finished upstream handles (and their data) go
        self._spec = None

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _demand(self) -> None:
        """Fetch a value left on the workers, once, because something asked for it."""
        if self._fetching or self._remote is None:
            return
        self._fetching = True
        loop = self.get_loop()
        if asyncio._get_running_loop() is not loop:
            loop.call_soon_threadsafe(self._start_fetch)
        else:
            self._start_fetch()

    def _start_fetch(self) -> None:
        fetch = self._remote.fetch  # type: ignore[union-attr]
        task = asyncio.ensure_future(fetch(), loop=self.get_loop())
        task.add_done_callback(self._fetched)

    def _fetched(self, task: asyncio.Future[Any]) -> None:
        self._remote = None
        if _future_done(self):
            return
        # The task is DONE and stays DONE: a value that cannot be fetched is written on
        # the record, and awaiting the task raises why.
        if task.cancelled():
            value_lost(self, asyncio.CancelledError("fetching the value was cancelled"))
            _future_cancel(self)
        elif (exc := task.exception()) is not None:  # the value was lost with its worker, say
            value_lost(self, exc)
            self.set_exception(exc)
        else:
            self.set_result(self._measured(task.result()))  # fetched: with when and where it ran


def _redirected(command: str | tuple[str, ...], stdout: str, stderr: str) -> str:
    """The command with its output sent to files (``capture_stdio=True``), as one shell command."""
    shell = command if isinstance(command, str) else shlex.join(command)
    return f"(\n{shell}\n) >{shlex.quote(stdout)} 2>{shlex.quote(stderr)}"
