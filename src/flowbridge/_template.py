"""What the decorators make: a task template whose call returns a TaskFuture at once."""

from __future__ import annotations

import asyncio
import functools
import inspect
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal

from . import _description
from ._errors import UnsupportedResource
from ._resources import Resources
from ._task import TaskFuture
from .adapter import TaskSpec

if TYPE_CHECKING:
    from ._engine import WorkflowEngine

Kind = Literal["function", "executable", "block", "prompt"]
OPTIONS = ("name", "resources", "retries", "timeout", "backend", "task_description", "capture_stdio")
_KIND_CAPABILITY = {"function": "functions", "executable": "executables", "prompt": "prompts"}
_log = logging.getLogger("flowbridge.task")


class TaskTemplate:
    """A decorated function: calling it submits a task and returns its TaskFuture."""

    def __init__(self, engine: WorkflowEngine, func: Callable[..., Any], kind: Kind, options: dict[str, Any]) -> None:
        self.engine = engine
        self.func = func
        self.kind = kind
        self._kind_any: Any = kind  # as TaskSpec.kind (never "block" where it is used)
        self.name: str = options.get("name") or getattr(func, "__name__", None) or type(func).__name__
        self.retries: int = options.get("retries", 0)
        self.timeout: float | None = options.get("timeout")
        #: asyncflow's task_description: the function's own default, then the decorator's
        self.description = {**_description.declared(func), **options.get("task_description", {})}
        self.resources: Resources | None = _description.resources(
            self.description, options.get("resources"), f"task {self.name}"
        )
        self.capture_stdio: bool = options.get("capture_stdio", False)
        #: whether an ``async def`` body awaits anything (one that does not runs at once, see TaskFuture._run)
        self.awaits = _awaits(func)
        self.adapter: Any = None  # an Adapter, or any object with its methods
        #: where its tasks run, as their records say: route, adapter.name, type(adapter).name
        self.route = self.adapter_name = self.backend_name = "driver"
        if kind != "block":
            route = options.get("backend")
            self.adapter = engine._adapter_for(route, self.name)
            self._check_adapter()
            self.route = route or engine._default
            self.adapter_name = str(getattr(self.adapter, "name", type(self.adapter).__name__))
            self.backend_name = str(getattr(type(self.adapter), "name", type(self.adapter).__name__))
        self._prefix = "block" if kind == "block" else "task"
        functools.update_wrapper(self, func)

    def _check_adapter(self) -> None:
        adapter: Any = self.adapter
        capability = _KIND_CAPABILITY[self.kind]
        caps: frozenset[str] = getattr(adapter, "capabilities", frozenset())
        if self.kind == "prompt" and capability not in caps:
            raise NotImplementedError(
                f"the {getattr(adapter, 'name', adapter)!r} backend does not answer prompt tasks ({self.name}): "
                f"a prompt task needs an inference backend, an adapter that declares the 'prompts' capability "
                f"(flowbridge ships none yet); route it there with backend=..., or build the graph without "
                f"running it with NoopExecutionBackend or WorkflowEngine(dry_run=True)"
            )
        if capability not in caps:
            raise UnsupportedResource(
                f"the {getattr(adapter, 'name', adapter)!r} backend does not run {self.kind} tasks "
                f"({self.name}); route it to a backend that does with backend=..."
            )
        if self.resources is not None and hasattr(adapter, "check_resources"):
            adapter.check_resources(TaskSpec("at decoration", self.name, self._kind_any, resources=self.resources))

    def __call__(self, *args: Any, **kwargs: Any) -> TaskFuture:
        engine = self.engine
        workflow_id = resources = None
        if kwargs and ("workflow_id" in kwargs or "task_description" in kwargs):  # asyncflow's call-time options
            workflow_id = kwargs.pop("workflow_id", None)
            if workflow_id is not None and not isinstance(workflow_id, str):
                raise TypeError(f"{self.name}(workflow_id={workflow_id!r}): a workflow id is a str")
            if "task_description" in kwargs:
                where = f"{self.name}(task_description=...)"
                wanted = {**self.description, **_description.check(kwargs.pop("task_description"), where)}
                resources = _description.resources(wanted, None, where)
                if resources is not None and hasattr(self.adapter, "check_resources"):
                    self.adapter.check_resources(TaskSpec("at call", self.name, self._kind_any, resources=resources))
        loop = engine._loop_for_call()
        fut = TaskFuture(engine, self, f"{self._prefix}.{next(engine._counter):06d}")
        fut._workflow_id = workflow_id or engine._scope.get()
        if fut._rec is not None:
            fut._rec.workflow_id = fut._workflow_id
        if resources is not None:
            fut._resources = resources
        engine._live.add(fut)
        if engine._stats is not None:
            engine._stats.submitted()
        if asyncio._get_running_loop() is loop:
            fut._begin(args, kwargs)
        else:
            loop.call_soon_threadsafe(fut._begin, args, kwargs)
        return fut

    def __repr__(self) -> str:
        return f"<{self.kind} task {self.name!r} of {self.engine!r}>"


def check_options(decorator: str, options: dict[str, Any]) -> dict[str, Any]:
    """Validate decorator options, raising an error that says what is accepted."""
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise TypeError(
            f"{decorator}() got unknown option(s) {', '.join(map(repr, unknown))}; it takes: {', '.join(OPTIONS)}"
        )
    out = dict(options)
    name = out.get("name")
    if name is not None and (not isinstance(name, str) or not name):
        raise TypeError(f"{decorator}(name={name!r}): name must be a non-empty str")
    retries = out.get("retries", 0)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"{decorator}(retries={retries!r}): retries must be an int >= 0")
    timeout = out.get("timeout")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0):
        raise ValueError(f"{decorator}(timeout={timeout!r}): timeout must be a number of seconds > 0, or None")
    if "resources" in out:
        out["resources"] = Resources.coerce(out["resources"])
    backend = out.get("backend")
    if backend is not None and not isinstance(backend, str):
        raise TypeError(f"{decorator}(backend={backend!r}): name one of the engine's backends as a str")
    if "task_description" in out:
        out["task_description"] = _description.check(out["task_description"], f"{decorator}(task_description=...)")
    capture = out.get("capture_stdio", False)
    if not isinstance(capture, bool):
        raise TypeError(f"{decorator}(capture_stdio={capture!r}): capture_stdio is True or False")
    if capture and decorator != "executable_task":
        _log.warning("%s(capture_stdio=True) is ignored: only executable tasks have output to capture", decorator)
        out["capture_stdio"] = False
    if decorator == "block":
        for refused in ("resources", "backend", "retries", "task_description"):
            if out.get(refused):
                raise TypeError(
                    f"block({refused}=...) is not supported: a block runs on the driver's loop; "
                    f"set {refused}= on the tasks inside it"
                )
    return out


def check_target(decorator: str, func: Any) -> None:
    if not callable(func):
        raise TypeError(
            f"@{decorator} decorates a function; got {type(func).__name__} {func!r}. "
            f"Use @flow.{decorator} or @flow.{decorator}(name=..., ...)"
        )
    if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
        kind = "an async generator" if inspect.isasyncgenfunction(func) else "a generator"
        raise TypeError(
            f"@{decorator} cannot take {kind} function ({getattr(func, '__name__', func)!r}): a task "
            f"gives one value. Return a list instead (`return [...]`, or `list(...)` of the generator)"
        )
    if decorator == "block" and not (
        inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(getattr(type(func), "__call__", None))  # noqa: B004
    ):
        raise TypeError(
            f"@block needs an async function: {getattr(func, '__name__', func)!r} is not "
            f"`async def`. Make it async, or use @function_task for a plain function"
        )


_WAITS = frozenset({"GET_AWAITABLE", "SEND", "BEFORE_ASYNC_WITH", "GET_AITER", "GET_ANEXT", "END_ASYNC_FOR"})


def _awaits(func: Any) -> bool:
    """True unless ``func`` is an ``async def`` whose own code has no await, ``async with`` or ``async for``."""
    import dis

    code = getattr(func, "__code__", None)
    if code is None or not inspect.iscoroutinefunction(func):
        return True
    return any(instruction.opname in _WAITS for instruction in dis.get_instructions(code))
