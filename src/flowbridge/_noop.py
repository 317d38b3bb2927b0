"""NoopExecutionBackend: runs nothing, so a workflow's graph can be built and walked (dry run)."""

from __future__ import annotations

import asyncio
from typing import Any

from ._resources import FIELDS
from .adapter import Adapter, Backend, TaskSpec

#: What a task resolves to when nothing ran it: RADICAL-AsyncFlow's placeholders, kept as they are.
OUTPUT = "Dummy Output"
PROMPT_OUTPUT = "Dummy Prompt Output"


class NoopExecutionBackend(Adapter):
    """A backend that runs no task body: each task resolves at once to a placeholder.

    ``WorkflowEngine(dry_run=True)`` puts one on every route. Function tasks and
    executables resolve to ``"Dummy Output"``, prompt tasks to ``"Dummy Prompt
    Output"`` (RADICAL-AsyncFlow's values), in dependency order; an executable's
    body still runs on the driver (it only builds the command, which is checked
    and not run), and so do blocks. Every resource request is accepted and ignored.
    """

    name = "noop"
    capabilities = frozenset({"functions", "executables", "prompts"})
    supported_resources = frozenset({*FIELDS, "extra"})

    def __init__(self, name: str | None = None) -> None:
        self._named(name)

    def submit(self, task: TaskSpec) -> asyncio.Future[Any]:
        handle = asyncio.get_running_loop().create_future()
        handle.set_result(PROMPT_OUTPUT if task.kind == "prompt" else OUTPUT)
        return handle

    def __repr__(self) -> str:
        return f"<NoopExecutionBackend {self.name!r}>"


def dry_run_backends(backend: Any, backends: Any) -> dict[str, Backend]:
    """One NoopExecutionBackend per route the engine would have had; nothing given is started."""
    if backends is not None:
        routes = [str(key) for key in backends]
    elif isinstance(backend, (list, tuple)):
        routes = [item if isinstance(item, str) else getattr(item, "name", "default") for item in backend]
    else:
        routes = ["default"]
    return {route: NoopExecutionBackend(name=None if route == "default" else route) for route in routes}
