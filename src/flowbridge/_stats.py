"""Run statistics for `flowbridge compare`, recorded only when FLOWBRIDGE_STATS names a file."""

from __future__ import annotations

import json
import os
import time
from typing import Any

ENV_STATS = "FLOWBRIDGE_STATS"


class Stats:
    """Start-up, makespan and task counts of one engine; appended as a JSON line at shutdown."""

    __slots__ = ("created", "first", "last", "path", "ready", "states", "tasks")

    def __init__(self, path: str) -> None:
        self.path = path
        self.created = time.perf_counter()
        self.ready: float | None = None
        self.first: float | None = None
        self.last: float | None = None
        self.tasks = 0
        self.states: dict[str, int] = {}

    @classmethod
    def from_env(cls) -> Stats | None:
        path = os.environ.get(ENV_STATS)
        return cls(path) if path else None

    def submitted(self) -> None:
        self.tasks += 1
        if self.first is None:
            self.first = time.perf_counter()

    def settled(self, state: str) -> None:
        self.last = time.perf_counter()
        self.states[state] = self.states.get(state, 0) + 1

    def write(self, adapters: list[Any]) -> None:
        """One JSON line: which backends really ran (name and where), the profile in force, the figures."""

        def span(a: float | None, b: float | None) -> float | None:
            return None if a is None or b is None else round(b - a, 6)

        record: dict[str, Any] = {
            "backends": [getattr(type(a), "name", type(a).__name__) for a in adapters],
            "where": [repr(a).strip("<>") for a in adapters],
            "profile": os.environ.get("FLOWBRIDGE_PROFILE") or None,
            "startup_s": span(self.created, self.ready),
            "makespan_s": span(self.first, self.last),
            "tasks": self.tasks,
            "states": self.states,
        }
        with open(self.path, "a") as fh:
            fh.write(json.dumps(record) + "\n")
