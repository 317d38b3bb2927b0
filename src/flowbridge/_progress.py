"""``WorkflowEngine(progress=True)`` and ``flowbridge run --progress``: live counts by state and backend.

One tqdm bar on stderr: tasks ended out of tasks called, with the counts of
each state and, per backend, how many are pending and running. tqdm because it
is one small pure-Python package with no dependencies of its own, it copes with
a total that grows as tasks are called, and ``tqdm.auto`` draws a widget in
Jupyter; rich draws finer tables but brings markdown and pygments along.

Nothing is drawn unless stderr is a terminal (a log file or a pipe stays
clean) or the code runs in a Jupyter kernel. The bar is refreshed from the
engine's loop four times a second, from the set of unfinished tasks the engine
keeps anyway, so a task's own path pays one counter increment when it ends.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._engine import WorkflowEngine
    from ._task import TaskFuture

ENV_PROGRESS = "FLOWBRIDGE_PROGRESS"
TICK = 0.25  # seconds between refreshes


def wanted(progress: bool | None) -> bool:
    """``progress=`` as given, else ``FLOWBRIDGE_PROGRESS=1`` (set by ``flowbridge run --progress``)."""
    if progress is None:
        return os.environ.get(ENV_PROGRESS) == "1"
    if not isinstance(progress, bool):
        raise TypeError(f"WorkflowEngine(progress={progress!r}): progress is True or False")
    return progress


def shown() -> bool:
    """Whether a person sees stderr: a terminal, or a Jupyter kernel's output area."""
    if "ipykernel" in sys.modules:
        return True
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


class Progress:
    """The bar of one engine: started with the engine's loop, closed (a last refresh) at shutdown."""

    def __init__(self, engine: WorkflowEngine) -> None:
        self._engine = engine
        self.ended: dict[str, int] = {}  # final state -> tasks
        self._bar: Any = None
        self._timer: asyncio.TimerHandle | None = None

    def settled(self, task: TaskFuture) -> None:
        state = task._fb.value
        self.ended[state] = self.ended.get(state, 0) + 1

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        try:
            from tqdm.auto import tqdm  # type: ignore[import-untyped]
        except ImportError:  # pragma: no cover - tqdm is a dependency of flowbridge
            return
        size = shutil.get_terminal_size((100, 20))  # a terminal that says 0x0 (a bare pty) gets 100x20
        self._bar = tqdm(total=0, desc=self._engine.uid, unit="task", ncols=size.columns, nrows=size.lines)
        self._timer = loop.call_later(TICK, self._tick, loop)

    def _tick(self, loop: asyncio.AbstractEventLoop) -> None:
        self.refresh()
        if not self._engine._closed and not loop.is_closed():
            self._timer = loop.call_later(TICK, self._tick, loop)

    def refresh(self) -> None:
        bar = self._bar
        if bar is None:
            return
        waiting: dict[str, list[int]] = {}  # route -> [pending, running]
        for task in list(self._engine._live):
            row = waiting.setdefault(task._tmpl.route, [0, 0])
            row[task._fb.value == "RUNNING"] += 1
        done = sum(self.ended.values())
        bar.total = done + sum(p + r for p, r in waiting.values())
        bar.n = done
        states = " ".join(f"{s} {n}" for s, n in sorted(self.ended.items()))
        routes = ", ".join(f"{route}: {p} pending {r} running" for route, (p, r) in sorted(waiting.items()))
        bar.set_postfix_str("; ".join(x for x in (states, routes) if x), refresh=False)
        bar.refresh()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._bar is not None:
            self.refresh()
            self._bar.close()
            self._bar = None
