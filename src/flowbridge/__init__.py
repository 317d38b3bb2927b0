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
    TaskFailed,
    TaskTimeout,
    UnsupportedResource,
    WorkerLost,
)
from ._noop import NoopExecutionBackend
from ._resources import Resources
from ._task import TaskFuture, TaskState

if TYPE_CHECKING:
    from ._executor import Executor

#: RADICAL-AsyncFlow's name for the concurrent.futures backend.
LocalExecutionBackend = ConcurrentExecutionBackend

__version__ = "0.1.0"

__all__ = [
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
    "InvalidTaskBody",
    "LocalExecutionBackend",
    "NoopExecutionBackend",
    "ParslExecutionBackend",
    "RadicalExecutionBackend",
    "Resources",
    "TaskFailed",
    "TaskFuture",
    "TaskState",
    "TaskTimeout",
    "UnsupportedResource",
    "WorkerLost",
    "WorkflowEngine",
]


def __getattr__(name: str) -> Any:
    """Adapter classes import their framework only when first named."""
    if name == "Executor":
        from ._executor import Executor

        return Executor
    from ._registry import CLASS_NAMES, load

    if name in CLASS_NAMES:
        return load(CLASS_NAMES[name])
    raise AttributeError(f"module 'flowbridge' has no attribute {name!r}")
