"""The dependency graph, from one task's side: what it waits for and what releases it.

A task found futures in its arguments (``_find_dependencies``). It waits for each
one's *value*, except for an upstream task on the same adapter that declared
``native_dependencies``: then it waits only until that upstream is *submitted*
and is handed the framework's own handle (``_native``), so the framework's
scheduler releases it. ``_pending`` counts what it still waits for; at 0 it is
launched. Every wait is a callback: nothing polls.

Native bookkeeping: upstream ``_on_launch`` lists dependents waiting for its
submission (``_dep_launched``), ``_on_settle`` those told of its end
(``_dep_settled``) so that its failure or cancellation reaches them although
they never waited for its value.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from typing import TYPE_CHECKING, Any

from ._deps import find_futures, substitute
from ._errors import DependencyFailed
from ._record import CANCELLED, DONE, FAILED, FINAL, PENDING

if TYPE_CHECKING:
    from ._engine import WorkflowEngine
    from ._record import TaskRecord, TaskState
    from ._task import TaskFuture
    from ._template import TaskTemplate

NOT_NATIVE = object()
_future_add_done_callback = asyncio.Future.add_done_callback
_future_result = asyncio.Future.result
_future_done = asyncio.Future.done


class Dependent(asyncio.Future):  # type: ignore[type-arg]
    """The part of :class:`~flowbridge._task.TaskFuture` that waits for its dependencies."""

    __slots__ = ()

    if TYPE_CHECKING:  # defined by TaskFuture
        uid: str
        _engine: WorkflowEngine
        _tmpl: TaskTemplate
        _fb: TaskState
        _rec: TaskRecord | None
        _args: tuple[Any, ...]
        _kwargs: dict[str, Any]
        _pending: int
        _deps: list[Any] | None
        _native_deps: set[TaskFuture] | None
        _on_launch: list[TaskFuture] | None
        _on_settle: list[TaskFuture] | None
        _native: Any
        _remote: Any
        _parked: BaseException | None

        @property
        def name(self) -> str: ...
        def _fail(self, exc: BaseException, *, final: bool = False) -> None: ...

    def _begin(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """On the loop: find dependencies, wait for those not ready, launch when none is left."""
        self._args, self._kwargs = args, kwargs
        if self._fb is not PENDING:  # cancelled before it began
            return
        try:
            self._find_dependencies(args, kwargs)
        except Exception as exc:
            self._fail(exc, final=True)
            return
        if self._pending == 0 and self._fb is PENDING:
            self._engine._launch(self)  # type: ignore[arg-type]

    def _find_dependencies(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        futures = find_futures(args, kwargs) if (args or kwargs) else None
        if not futures:
            return
        self._deps = futures
        loop = self.get_loop()
        from ._task import TaskFuture

        for i, dep in enumerate(futures):
            if isinstance(dep, concurrent.futures.Future):
                dep = futures[i] = asyncio.wrap_future(dep, loop=loop)
            if type(dep) is TaskFuture and dep._engine is self._engine:
                self._watch_task(dep)
            elif dep.get_loop() is not loop:
                raise ValueError(
                    f"task {self.name}: a future of another event loop was passed as an "
                    f"argument; pass futures of the engine's loop"
                )
            elif not dep.done():
                self._pending += 1
                dep.add_done_callback(self._dep_value_ready)
            elif not self._dep_ok(dep):
                return

    def _watch_task(self, dep: TaskFuture) -> None:
        record = self._rec
        if dep._remote is None and _future_done(dep):
            if record is not None:
                record._edge(dep.uid, "value")
            self._dep_ok(dep)
            return
        tmpl = self._tmpl
        if (
            tmpl.kind == "function"  # an executable's body runs in the driver: it needs values
            and dep._tmpl.adapter is tmpl.adapter
            and tmpl.adapter is not None
            and "native_dependencies" in tmpl.adapter.capabilities
            and dep._tmpl.retries == 0
            and dep._fb is not FAILED
        ):
            if dep._native is NOT_NATIVE and dep._fb is not PENDING:  # running without a native handle
                self._wait_for_value(dep)
                return
            if self._native_deps is None:
                self._native_deps = set()
            self._native_deps.add(dep)
            if record is not None:
                record._edge(dep.uid, "native")
            if dep._on_settle is None:
                dep._on_settle = []
            dep._on_settle.append(self)  # type: ignore[arg-type]
            if dep._native is NOT_NATIVE:  # not submitted yet: wait for its handle
                self._pending += 1
                if dep._on_launch is None:
                    dep._on_launch = []
                dep._on_launch.append(self)  # type: ignore[arg-type]
            return
        self._wait_for_value(dep)

    def _wait_for_value(self, dep: TaskFuture) -> None:
        if self._rec is not None:
            self._rec._edge(dep.uid, "value")
        self._pending += 1
        dep.add_done_callback(self._dep_value_ready)

    def _dep_launched(self, dep: TaskFuture) -> None:
        """An upstream on our adapter was submitted: its native handle is all we need."""
        if dep._native is NOT_NATIVE:  # the adapter gave no native handle: wait for the value
            self._native_deps.discard(dep)  # type: ignore[union-attr]
            if self._rec is not None:
                deps = self._rec._deps
                deps[deps.index((dep.uid, "native"))] = (dep.uid, "value")
            dep.add_done_callback(self._dep_value_ready)
            return
        self._pending -= 1
        if self._pending == 0 and self._fb is PENDING:
            self._engine._launch(self)  # type: ignore[arg-type]

    def _dep_settled(self, dep: TaskFuture) -> None:
        """An upstream we consume natively ended."""
        if self._fb in FINAL:
            return
        if dep._fb is DONE:
            if self._parked is not None and not self._unsettled_native():
                parked, self._parked = self._parked, None
                self._fail(parked)
            return
        if dep._fb is CANCELLED:
            self.cancel()
        else:
            self._fail_dependency(dep, dep._exception_of())

    def _dep_value_ready(self, dep: asyncio.Future) -> None:  # type: ignore[type-arg]
        if self._fb is not PENDING:
            return
        if self._dep_ok(dep):
            self._pending -= 1
            if self._pending == 0:
                self._engine._launch(self)  # type: ignore[arg-type]

    def _dep_ok(self, dep: asyncio.Future) -> bool:  # type: ignore[type-arg]
        if dep.cancelled():
            self.cancel()
            return False
        exc = dep.exception()
        if exc is not None:
            self._fail_dependency(dep, exc)
            return False
        return True

    def _fail_dependency(self, dep: Any, exc: BaseException) -> None:
        label = f"{dep.uid} ({dep.name})" if isinstance(dep, Dependent) else repr(dep)
        others = [_dep_name(d) for d in self._deps or () if d is not dep and _has_failed(d)]
        self._fail(DependencyFailed(f"{self.uid} ({self.name})", label, exc, [_dep_name(dep), *others]), final=True)

    def _unsettled_native(self) -> bool:
        return any(d._fb not in FINAL for d in self._native_deps or ())

    def _exception_of(self) -> BaseException:
        return super().exception()  # type: ignore[return-value]

    def _values(self) -> tuple[tuple[Any, ...], dict[str, Any]]:
        """Arguments with every dependency replaced by its value or native handle."""
        if not self._deps:
            return self._args, self._kwargs
        natives = self._native_deps

        def lookup(fut: Any) -> Any:
            if natives and fut in natives:
                return fut._native
            if isinstance(fut, concurrent.futures.Future):
                return fut.result()
            return _future_result(fut)

        args = substitute(self._args, lookup)
        kwargs = substitute(self._kwargs, lookup) if self._kwargs else self._kwargs
        return args, kwargs


def _dep_name(dep: Any) -> str:
    return str(dep.name) if isinstance(dep, Dependent) else repr(dep)


def _has_failed(dep: Any) -> bool:
    """A dependency that has ended with an error (never blocks, never fetches)."""
    if isinstance(dep, Dependent):
        return dep._fb is FAILED
    return bool(_future_done(dep) and not dep.cancelled() and dep.exception() is not None)
