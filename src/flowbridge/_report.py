"""``flow.report()``: what ran, where and when, read from the task records (never from state of its own).

A :class:`Report` is a snapshot: the records of every task called so far.
``summary()`` is a text table; ``to_json``, ``to_chrome_trace`` and ``to_html``
write files. Durations are measured on the driver: an attempt spans from its
hand-over to the backend to the moment the driver learnt of its end (the time it
spent queued on the backend included; where the body started is not measured yet).
"""

from __future__ import annotations

import heapq
import json
import math
import os
import time
from collections.abc import Iterable, Sequence
from typing import Any

from ._record import FINAL, PERF0, WALL0, TaskRecord, TaskState

STATES = [s.value for s in TaskState]


class Report:
    """The records of one engine's tasks, with the figures and files made from them."""

    def __init__(self, tasks: Sequence[TaskRecord], name: str = "flowbridge") -> None:
        #: the task records, in call order
        self.tasks: list[TaskRecord] = list(tasks)
        self.name = name
        self._by_uid = {r.uid: r for r in self.tasks}

    # -- figures ------------------------------------------------------------------

    def counts(self) -> dict[str, dict[str, int]]:
        """Tasks by backend (``route (backend)``, blocks: ``driver``) and state."""
        out: dict[str, dict[str, int]] = {}
        for r in self.tasks:
            row = out.setdefault(_backend_label(r), dict.fromkeys(STATES, 0))
            row[r.state.value] += 1
        return out

    @property
    def makespan(self) -> float | None:
        """Seconds from the first task's call to the last task's end; None before any ended."""
        ends = [e for r in self.tasks if (e := r.ended_perf) is not None]
        if not ends:
            return None
        return max(ends) - min(r.created_perf for r in self.tasks)

    def critical_path(self) -> tuple[float, list[TaskRecord]]:
        """The longest chain through the dependency edges, by the tasks' durations: (seconds, tasks).

        A task's duration runs from its first hand-over to its end (retries
        included); a task that never reached its backend counts 0.
        """
        best: dict[str, tuple[float, str | None]] = {}
        for r in self.tasks:  # call order is a topological order: a dependency exists before its dependents
            before, via = 0.0, None
            for uid, _ in r.deps:
                if uid in best and best[uid][0] > before:
                    before, via = best[uid][0], uid
            best[r.uid] = (before + _duration(r), via)
        if not best:
            return 0.0, []
        end = max(best, key=lambda uid: best[uid][0])
        total, path = best[end][0], []
        cursor: str | None = end
        while cursor is not None:
            path.append(self._by_uid[cursor])
            cursor = best[cursor][1]
        return total, path[::-1]

    def latencies(self) -> list[float]:
        """Seconds from hand-over to end of every attempt that ended, sorted."""
        return sorted(d for r in self.tasks for a in r.attempts if (d := a.duration) is not None)

    def failures(self) -> list[tuple[TaskRecord, list[TaskRecord]]]:
        """Each task that failed of its own error, with the tasks that failed because of it.

        A task failed by a plain future (not a task of this report) counts as a root itself.
        """
        roots: dict[str, list[TaskRecord]] = {}
        for r in self.tasks:
            if r.state is TaskState.FAILED:
                root = r.root_task.split(" ", 1)[0] if r.root_task is not None else None
                if root is None or root not in self._by_uid:  # its own error, or a root that is no task here
                    roots.setdefault(r.uid, [])
        for r in self.tasks:
            if r.state is TaskState.FAILED and r.root_task is not None:
                root = r.root_task.split(" ", 1)[0]
                if root in self._by_uid:
                    roots.setdefault(root, []).append(r)
        return [(self._by_uid[uid], deps) for uid, deps in roots.items()]

    def summary(self) -> str:
        """A text table: tasks by state and backend, makespan, critical path, latencies, failures."""
        lines = [f"flowbridge report {self.name}: {len(self.tasks)} task(s)"]
        counts = self.counts()
        width = max([len("backend"), *map(len, counts)]) + 2
        lines.append(f"{'backend':<{width}}" + "".join(f"{s:>10}" for s in STATES) + f"{'total':>8}")
        for label, row in counts.items():
            lines.append(f"{label:<{width}}" + "".join(f"{row[s]:>10}" for s in STATES) + f"{sum(row.values()):>8}")
        span = self.makespan
        lines.append(f"makespan: {_secs(span)} (first call to last end)" if span is not None else "makespan: -")
        total, path = self.critical_path()
        if path:
            chain = " -> ".join(f"{r.uid} ({r.name}) {_secs(_duration(r))}" for r in path[:8])
            more = f" -> ... {len(path) - 8} more" if len(path) > 8 else ""
            lines.append(f"critical path: {len(path)} task(s), {_secs(total)}: {chain}{more}")
        lat = self.latencies()
        if lat:
            lines.append(
                f"latency, hand-over to end, {len(lat)} attempt(s): "
                + ", ".join(f"{label} {_secs(_percentile(lat, q))}" for label, q in _QUANTILES)
            )
        failures = self.failures()
        lines.append(f"failures: {len(failures)} root cause(s)" if failures else "failures: none")
        for root, because in failures:
            error = f"{root.error_type}: {root.error_message}" if root.error_type else "(no error recorded)"
            tail = f"; {len(because)} dependent task(s) failed because of it" if because else ""
            lines.append(f"  {root.uid} ({root.name}) on {_backend_label(root)}: {_one_line(error)}{tail}")
        lost = [r for r in self.tasks if r.lost]
        for r in lost:
            lines.append(f"  {r.uid} ({r.name}) DONE, value lost: {r.lost[0]}: {_one_line(r.lost[1])}")  # type: ignore[index]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        return f"<Report {self.name} {len(self.tasks)} task(s)>"

    # -- files ------------------------------------------------------------------------

    def as_dict(self) -> dict[str, Any]:
        total, path = self.critical_path()
        lat = self.latencies()
        return {
            "name": self.name,
            "generated": time.time(),
            "counts": self.counts(),
            "makespan_s": self.makespan,
            "critical_path": {"seconds": total, "tasks": [r.uid for r in path]},
            "latency_s": {label: _percentile(lat, q) for label, q in _QUANTILES} if lat else None,
            "tasks": [r.as_dict() for r in self.tasks],
        }

    def to_json(self, path: str | os.PathLike[str]) -> None:
        """Every record and the summary figures as one JSON document."""
        _write(path, json.dumps(self.as_dict(), indent=1))

    def trace_events(self) -> list[dict[str, Any]]:
        """The report as Trace Event Format events (see :meth:`to_chrome_trace`)."""
        return chrome_trace_events(self.tasks)

    def to_chrome_trace(self, path: str | os.PathLike[str]) -> None:
        """A trace for Perfetto (ui.perfetto.dev) and chrome://tracing: a bar per attempt, arrows per edge.

        One process per backend (blocks: "driver"), one thread per lane (attempts
        that overlap in time get lanes of their own), ``X`` events for attempts,
        ``i`` events for tasks that never reached their backend, ``s``/``f`` flow
        events from a dependency's end to its dependent's hand-over.
        """
        doc = {
            "traceEvents": self.trace_events(),
            "displayTimeUnit": "ms",
            "otherData": {"report": self.name, "t0_wall": _t0_wall(self.tasks)},
        }
        _write(path, json.dumps(doc))

    def to_html(self, path: str | os.PathLike[str]) -> None:
        """One self-contained HTML file (no network): summary, timeline coloured by state, failures."""
        from ._html import render

        _write(path, render(self))


_QUANTILES = (("p50", 0.50), ("p90", 0.90), ("p99", 0.99), ("max", 1.0))


def chrome_trace_events(tasks: Iterable[TaskRecord]) -> list[dict[str, Any]]:
    records = list(tasks)
    if not records:
        return []
    t0 = min(r.created_perf for r in records)
    last = max([r.created_perf for r in records] + [e for r in records if (e := r.ended_perf) is not None])

    def us(perf: float) -> float:
        return round((perf - t0) * 1e6, 3)

    events: list[dict[str, Any]] = []
    pids: dict[str, int] = {}
    lanes: dict[int, list[tuple[float, int]]] = {}  # pid -> heap of (free from, tid)
    threads: dict[int, dict[str, int]] = {}  # pid of a worker process -> its threads' tids
    first_at: dict[str, tuple[int, int, float]] = {}
    last_at: dict[str, tuple[int, int, float, float]] = {}
    spans = sorted(
        ((a.submitted_perf, r, a) for r in records for a in r.attempts), key=lambda item: (item[0], item[1].uid)
    )
    for start, r, a in spans:
        label = _backend_label(r)
        if a.started is not None and a.finished is not None:
            # measured on the worker: a track per worker process and thread, the bar the body's own run
            pid = pids.setdefault(f"{label} {a.host}:{a.pid}", len(pids) + 1)
            names = threads.setdefault(pid, {})
            tid = names.setdefault(a.worker or "?", len(names) + 1)
            queued: float | None = a.started - a.submitted
            start, end = PERF0 + (a.started - WALL0), PERF0 + (a.finished - WALL0)
        else:  # the driver's view: hand-over to end, on a lane per overlap
            pid = pids.setdefault(label, len(pids) + 1)
            end = a.ended_perf if a.ended_perf is not None else last
            tid = _lane(lanes.setdefault(pid, []), start, end)
            queued = None
        args: dict[str, Any] = {
            "uid": r.uid,
            "attempt": a.number,
            "outcome": a.outcome or "RUNNING",
            "state": r.state.value,
            "kind": r.kind,
        }
        for key, value in (
            ("error", f"{a.error_type}: {a.error_message}" if a.error_type else None),
            ("workflow_id", r.workflow_id),
            ("parent", r.parent),
            ("where", a.where),
            ("queued_ms", None if queued is None else round(queued * 1e3, 3)),
        ):
            if value is not None:
                args[key] = value
        events.append(
            {
                "ph": "X",
                "name": r.name,
                "cat": r.kind,
                "ts": max(0.0, us(start)),
                "dur": max(0.0, round((end - start) * 1e6, 3)),
                "pid": pid,
                "tid": tid,
                "args": args,
            }
        )
        first_at.setdefault(r.uid, (pid, tid, start))
        last_at[r.uid] = (pid, tid, start, end)
    for r in records:  # never handed to a backend: failed or cancelled while waiting
        if not r.attempts and r.state in FINAL:
            pid = pids.setdefault(_backend_label(r), len(pids) + 1)
            events.append(
                {
                    "ph": "i",
                    "s": "t",
                    "name": f"{r.name} ({r.state.value}, not run)",
                    "cat": r.kind,
                    "ts": us(r.ended_perf),  # type: ignore[arg-type]
                    "pid": pid,
                    "tid": 0,
                    "args": {"uid": r.uid, "state": r.state.value, "error": r.error_message},
                }
            )
    flow_id = 0
    for r in records:
        if r.uid not in first_at:
            continue
        pid, tid, start = first_at[r.uid]
        for uid, edge in r.deps:
            if uid not in last_at:
                continue
            flow_id += 1
            dpid, dtid, dstart, dend = last_at[uid]
            common = {"name": f"{edge} dependency", "cat": "dependency", "id": flow_id}
            inside = max(dstart, dend - min(1e-6, (dend - dstart) / 2))  # bound to the upstream's bar
            events.append({"ph": "s", "ts": us(inside), "pid": dpid, "tid": dtid, **common})
            events.append({"ph": "f", "bp": "e", "ts": us(start), "pid": pid, "tid": tid, **common})
    meta: list[dict[str, Any]] = []
    for label, pid in pids.items():
        meta.append({"ph": "M", "name": "process_name", "ts": 0, "pid": pid, "tid": 0, "args": {"name": label}})
        meta.append(
            {"ph": "M", "name": "process_sort_index", "ts": 0, "pid": pid, "tid": 0, "args": {"sort_index": pid}}
        )
        tracks = {0: "not run"} | {tid: f"lane {tid}" for _, tid in lanes.get(pid, [])}
        tracks |= {tid: worker for worker, tid in threads.get(pid, {}).items()}
        for tid, name in sorted(tracks.items()):
            meta.append({"ph": "M", "name": "thread_name", "ts": 0, "pid": pid, "tid": tid, "args": {"name": name}})
    return meta + events


def _lane(heap: list[tuple[float, int]], start: float, end: float) -> int:
    """The lowest-numbered free lane at ``start`` (lanes are 1, 2, ...), taken until ``end``."""
    if heap and heap[0][0] <= start:
        _, tid = heapq.heapreplace(heap, (end, heap[0][1]))
        return tid
    tid = len(heap) + 1
    heapq.heappush(heap, (end, tid))
    return tid


def _backend_label(r: TaskRecord) -> str:
    if r.kind == "block":
        return "driver"
    return r.route if r.route == r.backend else f"{r.route} ({r.backend})"


def _duration(r: TaskRecord) -> float:
    if not r.attempts:
        return 0.0
    end = r.attempts[-1].ended_perf
    return 0.0 if end is None else end - r.attempts[0].submitted_perf


def _percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted values."""
    return sorted_values[min(len(sorted_values), max(1, math.ceil(q * len(sorted_values)))) - 1]


def _secs(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.0f} us"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.3f} s"


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _t0_wall(records: list[TaskRecord]) -> float | None:
    if not records:
        return None
    return WALL0 + (min(r.created_perf for r in records) - PERF0)


def _write(path: str | os.PathLike[str], text: str) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
