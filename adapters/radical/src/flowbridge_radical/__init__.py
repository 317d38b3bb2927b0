"""flowbridge-radical: flowbridge tasks on a RADICAL-Pilot pilot.

    from flowbridge import RadicalExecutionBackend, WorkflowEngine

    flow = WorkflowEngine(backend=RadicalExecutionBackend({"resource": "local.localhost"}))

Executable tasks become pilot tasks; function tasks run on RAPTOR workers started
with the pilot. RADICAL-Pilot itself is imported only when a backend starts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._backend import RadicalExecutionBackend

__all__ = ["RadicalExecutionBackend"]


def __getattr__(name: str) -> Any:
    if name == "RadicalExecutionBackend":
        from ._backend import RadicalExecutionBackend

        return RadicalExecutionBackend
    raise AttributeError(f"module 'flowbridge_radical' has no attribute {name!r}")
