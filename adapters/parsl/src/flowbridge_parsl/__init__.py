"""flowbridge-parsl: flowbridge tasks on Parsl (HighThroughputExecutor, SLURM, or your DataFlowKernel).

    from flowbridge import ParslExecutionBackend, WorkflowEngine

    flow = WorkflowEngine(backend=ParslExecutionBackend())

The adapter class is imported on first use, so the small modules that Parsl runs
on workers (the task runners, the owner guard) do not pull in the driver side.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._backend import ParslExecutionBackend

__all__ = ["ParslExecutionBackend"]


def __getattr__(name: str) -> Any:
    if name == "ParslExecutionBackend":
        from ._backend import ParslExecutionBackend

        return ParslExecutionBackend
    raise AttributeError(f"module 'flowbridge_parsl' has no attribute {name!r}")
