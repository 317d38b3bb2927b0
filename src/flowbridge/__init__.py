"""flowbridge: one asyncio front-end for workflows, many HPC stacks behind it.

from flowbridge import WorkflowEngine

flow = WorkflowEngine()              # local threads; or backend="dask", "parsl", ...

@flow.function_task
def square(x):
    return x * x

total = await flow.function_task(sum)([square(i) for i in range(4)])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._concurrent import ConcurrentExecutionBackend
from ._engine import WorkflowEngine
from ._errors import (
    BackendUnavailable,
    ConfigError,
    DependencyFailed,
    DependencyFailureError,
    EngineClosed,
    FlowbridgeError,
    InvalidTaskBody,
    TaskError,
    TaskFailed,
    TaskTimeout,
    UnsupportedResource,
    WorkerLost,
)
from ._logging import log_to_stderr
from ._noop import NoopExecutionBackend
from ._record import Attempt, IllegalTransition, TaskRecord
from ._resources import Resources
from ._task import TaskFuture, TaskState

if TYPE_CHECKING:
    from ._executor import Executor
    from ._graph import Graph, GraphvizNotFound
    from ._report import Report

#: RADICAL-AsyncFlow's name for the concurrent.futures backend.
LocalExecutionBackend = ConcurrentExecutionBackend

__version__ = "0.1.0"

__all__ = [
    "Attempt",
    "BackendUnavailable",
    "ConcurrentExecutionBackend",
    "ConfigError",
    "DaskExecutionBackend",
    "DependencyFailed",
    "DependencyFailureError",
    "EngineClosed",
    "Executor",
    "ExecutorlibExecutionBackend",
    "FlowbridgeError",
    "Graph",
    "GraphvizNotFound",
    "IllegalTransition",
    "InvalidTaskBody",
    "LocalExecutionBackend",
    "NoopExecutionBackend",
    "ParslExecutionBackend",
    "RadicalExecutionBackend",
    "Report",
    "Resources",
    "TaskError",
    "TaskFailed",
    "TaskFuture",
    "TaskRecord",
    "TaskState",
    "TaskTimeout",
    "UnsupportedResource",
    "WorkerLost",
    "WorkflowEngine",
    "log_to_stderr",
]


def __getattr__(name: str) -> Any:
    """Adapter classes import their framework only when first named; the report modules too."""
    if name == "Report":
        from ._report import Report

        return Report
    if name in ("Graph", "GraphvizNotFound"):
        from . import _graph

        return getattr(_graph, name)
    if name == "Executor":
        from ._executor import Executor

        return Executor
    from ._registry import CLASS_NAMES, load

    if name in CLASS_NAMES:
        return load(CLASS_NAMES[name])
    raise AttributeError(f"module 'flowbridge' has no attribute {name!r}")


def _importable(names: list[str]) -> list[str]:
    """``from flowbridge import *`` takes an adapter class only when its framework is installed."""
    from ._registry import CLASS_NAMES, FRAMEWORKS, _findable

    def usable(name: str) -> bool:
        framework = FRAMEWORKS.get(CLASS_NAMES.get(name, ""))
        return framework is None or _findable(framework)

    return [name for name in names if usable(name)]


__all__ = _importable(__all__)
