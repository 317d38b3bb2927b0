"""The task record: the one place a task's life is written down, and the one function that changes it.

Every state change of a task goes through :func:`transition`, which checks it
against :data:`LEGAL`, sets the task's state, appends it to the task's
:class:`TaskRecord` (when the engine keeps records) and logs it on
``flowbridge.task``. A final state (DONE, FAILED, CANCELLED) never changes.

Times are taken with ``time.perf_counter()`` (cheap, monotonic) and shown as
wall-clock times (``time.time()``) through one reading of both clocks taken
when this module was imported: ``wall = WALL0 + (perf - PERF0)``.
"""

from __future__ import annotations

import enum
import logging
import time
from typing import TYPE_CHECKING, Any

from ._errors import DependencyFailed, FlowbridgeError, TaskError

if TYPE_CHECKING:
    from ._task import TaskFuture


class TaskState(enum.StrEnum):
    """Where a task is: waiting, handed to its backend, or finished one of three ways."""

    PENDING = "PENDING"  # waiting for dependencies or for the backend to start
    RUNNING = "RUNNING"  # handed to the backend (or, for a block, its body runs)
    DONE = "DONE"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


PENDING, RUNNING, DONE, FAILED, CANCELLED = TaskState
FINAL = (DONE, FAILED, CANCELLED)

#: The state changes a task may make; a final state has none.
LEGAL: dict[TaskState, frozenset[TaskState]] = {
    PENDING: frozenset({RUNNING, FAILED, CANCELLED}),
    RUNNING: frozenset({DONE, FAILED, CANCELLED}),
    DONE: frozenset(),
    FAILED: frozenset(),
    CANCELLED: frozenset(),
}

_NONE: Any = ()
_FIRST: Any = ("first",)  # see TaskRecord._submitted
WALL0 = time.time()
PERF0 = time.perf_counter()
_perf = time.perf_counter
_log = logging.getLogger("flowbridge.task")


def wall(perf: float | None) -> float | None:
    """A perf_counter reading as a ``time.time()`` value (seconds since the epoch)."""
    return None if perf is None else WALL0 + (perf - PERF0)


class IllegalTransition(FlowbridgeError, RuntimeError):
    """A state change that :data:`LEGAL` does not allow: a bug in flowbridge or an adapter."""


class Attempt:
    """One hand-over of a task to its backend (a block: one run of its body).

    ``submitted`` and ``ended`` are wall-clock times (``time.time()``), the
    ``*_perf`` fields the ``time.perf_counter()`` readings they come from.
    ``outcome`` is None while it runs, then "DONE", "FAILED" or "CANCELLED";
    a failed attempt that was retried has outcome "FAILED" too, and the task
    goes on. ``started`` and ``finished`` (wall-clock times around the body,
    taken on the worker), ``host``, ``pid``, ``worker`` (its thread) and
    ``where`` (``"host:pid/thread"``) are None unless the backend reports them
    (see ``flowbridge.worker.Ran``).
    """

    __slots__ = (
        "ended_perf",
        "error_message",
        "error_type",
        "finished",
        "host",
        "number",
        "outcome",
        "pid",
        "started",
        "submitted_perf",
        "where",
        "worker",
    )

    def __init__(self, number: int, submitted_perf: float) -> None:
        self.number = number
        self.submitted_perf = submitted_perf
        self.ended_perf: float | None = None
        self.outcome: str | None = None
        self.error_type: str | None = None
        self.error_message: str | None = None
        self.started: float | None = None
        self.finished: float | None = None
        self.host: str | None = None
        self.pid: int | None = None
        self.worker: str | None = None
        self.where: str | None = None

    def _ran(self, ran: tuple[float, float, tuple[str, int, str]]) -> None:
        self.started, self.finished, (self.host, self.pid, self.worker) = ran
        self.where = f"{self.host}:{self.pid}/{self.worker}"

    @property
    def submitted(self) -> float:
        return WALL0 + (self.submitted_perf - PERF0)

    @property
    def ended(self) -> float | None:
        return wall(self.ended_perf)

    @property
    def duration(self) -> float | None:
        """Seconds from hand-over to end, None while it runs."""
        return None if self.ended_perf is None else self.ended_perf - self.submitted_perf

    def _end(self, outcome: str, perf: float, error: BaseException | None) -> None:
        self.outcome = outcome
        self.ended_perf = perf
        if error is not None:
            self.error_type, self.error_message = type(error).__name__, str(error)

    def as_dict(self) -> dict[str, Any]:
        return {
            "number": self.number,
            "submitted": self.submitted,
            "started": self.started,
            "finished": self.finished,
            "ended": self.ended,
            "where": self.where,
            "host": self.host,
            "pid": self.pid,
            "worker": self.worker,
            "outcome": self.outcome,
            "error_type": self.error_type,
            "error_message": self.error_message,
        }

    def __repr__(self) -> str:
        return f"<Attempt {self.number} {self.outcome or 'running'}>"


class TaskRecord:
    """What is known of one task: identity, placement, edges, state, and its attempts.

    ``kind`` is "function", "executable", "block" or "prompt"; ``route`` the
    engine's name for the backend, ``adapter`` that adapter's ``name`` and
    ``backend`` its registry name (``type(adapter).name``; blocks run on the
    driver: all three are "driver"). ``deps`` lists ``(uid, edge)`` for every
    task of the same engine found in the arguments, ``edge`` being "value"
    (the value was passed) or "native" (the framework's own handle was).
    ``error_type``/``error_message`` say why it FAILED or was CANCELLED,
    ``root_type``/``root_message``/``root_task`` name the root cause when a
    dependency's failure caused it. ``lost`` is set when the value of a DONE
    task could not be fetched (its worker died, say): awaiting it raises that
    error, the state stays DONE.
    """

    __slots__ = (
        "_attempts",
        "_deps",
        "_failure",
        "_t0",
        "_t1",
        "_t2",
        "_w",
        "adapter",
        "backend",
        "kind",
        "lost",
        "name",
        "parent",
        "route",
        "state",
        "uid",
        "workflow_id",
    )

    def __init__(
        self,
        uid: str,
        name: str,
        kind: str,
        route: str,
        adapter: str,
        backend: str,
        parent: str | None,
        workflow_id: str | None = None,
    ) -> None:
        self.uid = uid
        self.name = name
        self.kind = kind
        self.route = route
        self.adapter = adapter
        self.backend = backend
        self.parent = parent
        self.workflow_id = workflow_id
        self.state = PENDING
        # Shared empty tuples until the first edge or attempt: most records stay this small.
        self._deps: list[tuple[str, str]] = _NONE
        self._attempts: list[Attempt] = _NONE
        self._failure: tuple[str, str, str | None, str | None, str | None] | None = None
        self.lost: tuple[str, str] | None = None
        # perf_counter when it was called, became RUNNING, ended: LEGAL allows no other path,
        # so these three are its whole history (and no list per record for the GC to walk)
        self._t0 = _perf()
        self._t1: float | None = None
        self._t2: float | None = None
        # the worker's (started, finished, (host, pid, thread)) of the one attempt, until it is an object
        self._w: tuple[float, float, tuple[str, int, str]] | None = None

    # -- reading ----------------------------------------------------------------

    @property
    def deps(self) -> list[tuple[str, str]]:
        """``(uid, edge)`` of each dependency, edge "value" or "native"."""
        return self._deps if self._deps is not _NONE else []

    @property
    def attempts(self) -> list[Attempt]:
        """One :class:`Attempt` per hand-over to the backend, oldest first."""
        if self._attempts is _FIRST:
            self._materialize()
        return self._attempts if self._attempts is not _NONE else []

    def _materialize(self) -> None:
        """The one attempt of the common case, kept as "handed over when it became RUNNING", as an object."""
        attempt = Attempt(1, self._t1)  # type: ignore[arg-type]
        if self._t2 is not None:  # it ended: the final state is its outcome
            failure = self._failure
            attempt.outcome, attempt.ended_perf = self.state, self._t2
            if failure is not None and self.state is not CANCELLED:
                attempt.error_type, attempt.error_message = failure[0], failure[1]
        if self._w is not None:
            attempt._ran(self._w)
            self._w = None
        self._attempts = [attempt]

    @property
    def error_type(self) -> str | None:
        return None if self._failure is None else self._failure[0]

    @property
    def error_message(self) -> str | None:
        return None if self._failure is None else self._failure[1]

    @property
    def root_task(self) -> str | None:
        return None if self._failure is None else self._failure[2]

    @property
    def root_type(self) -> str | None:
        return None if self._failure is None else self._failure[3]

    @property
    def root_message(self) -> str | None:
        return None if self._failure is None else self._failure[4]

    @property
    def transitions(self) -> list[tuple[TaskState, float]]:
        """Every state the task was in, with the wall-clock time it got there, oldest first."""
        out = [(PENDING, WALL0 + (self._t0 - PERF0))]
        if self._t1 is not None:
            out.append((RUNNING, WALL0 + (self._t1 - PERF0)))
        if self._t2 is not None:
            out.append((self.state, WALL0 + (self._t2 - PERF0)))
        return out

    @property
    def created_perf(self) -> float:
        return self._t0

    @property
    def created(self) -> float:
        """When the task was called (wall clock)."""
        return WALL0 + (self._t0 - PERF0)

    @property
    def ended_perf(self) -> float | None:
        return self._t2

    @property
    def ended(self) -> float | None:
        """When the task reached its final state (wall clock), None before."""
        return wall(self.ended_perf)

    def as_dict(self) -> dict[str, Any]:
        """The record as plain JSON-able data."""
        return {
            "uid": self.uid,
            "name": self.name,
            "kind": self.kind,
            "route": self.route,
            "adapter": self.adapter,
            "backend": self.backend,
            "parent": self.parent,
            "workflow_id": self.workflow_id,
            "state": self.state.value,
            "deps": [{"uid": uid, "edge": edge} for uid, edge in self.deps],
            "created": self.created,
            "ended": self.ended,
            "transitions": [[s.value, t] for s, t in self.transitions],
            "attempts": [a.as_dict() for a in self.attempts],
            "error_type": self.error_type,
            "error_message": self.error_message,
            "root_task": self.root_task,
            "root_type": self.root_type,
            "root_message": self.root_message,
            "lost": list(self.lost) if self.lost else None,
        }

    def __repr__(self) -> str:
        return f"<TaskRecord {self.uid} {self.name!r} {self.state.value} attempts={len(self.attempts)}>"

    # -- writing (the engine's side) ---------------------------------------------

    def _edge(self, uid: str, edge: str) -> None:
        if self._deps is _NONE:
            self._deps = [(uid, edge)]
        else:
            self._deps.append((uid, edge))

    def _submitted(self, perf: float, at_running: bool = False) -> None:
        if self._attempts is _NONE:
            # The common case costs no object: one attempt, handed over as the task became RUNNING.
            self._attempts = _FIRST if at_running else [Attempt(1, perf)]
        else:
            if self._attempts is _FIRST:
                self._materialize()
            self._attempts.append(Attempt(len(self._attempts) + 1, perf))

    def _worker_ran(self, ran: tuple[float, float, tuple[str, int, str]]) -> None:
        """When and where the current attempt's body ran, as its worker measured it."""
        if self._attempts is _FIRST or self._attempts is _NONE:
            self._w = ran  # kept as the tuple it came in: the common case makes no object
        else:
            self._attempts[-1]._ran(ran)

    def _attempt_failed(self, error: BaseException) -> None:
        """The running attempt failed and the task is retried: the next attempt follows."""
        if self._attempts is _FIRST:
            self._materialize()
        if self._attempts and self._attempts[-1].outcome is None:
            self._attempts[-1]._end("FAILED", _perf(), error)

    def _moved(self, state: TaskState, perf: float, error: BaseException | None) -> None:
        self.state = state
        if state is RUNNING:
            self._t1 = perf
        else:  # a final state
            self._t2 = perf
            attempts = self._attempts
            if attempts and attempts is not _FIRST and attempts[-1].outcome is None:
                attempts[-1]._end(state, perf, error)
            if error is not None:
                if isinstance(error, DependencyFailed):
                    root = error.root
                    self._failure = (type(error).__name__, str(error), error.origin, type(root).__name__, str(root))
                else:
                    self._failure = (type(error).__name__, str(error), None, None, None)


def transition(task: TaskFuture, state: TaskState, error: BaseException | None = None) -> None:
    """Move ``task`` to ``state``: the only way a task's state changes.

    Raises :class:`IllegalTransition` for a change :data:`LEGAL` refuses. Logs
    each change at DEBUG on ``flowbridge.task``; a failure at WARNING with its
    error, unless a dependency's failure caused it (INFO: the root was logged).
    """
    old = task._fb
    # LEGAL, by identity (an enum's hash is a Python call)
    if not (
        (old is PENDING and (state is RUNNING or state is FAILED or state is CANCELLED))
        or (old is RUNNING and (state is DONE or state is FAILED or state is CANCELLED))
    ):
        raise IllegalTransition(
            f"task {task.uid} ({task.name}): {old.value} -> {state.value} is not a legal state change"
        )
    task._fb = state
    record = task._rec
    if record is not None:
        record._moved(state, _perf(), error)
    if state is FAILED:
        if isinstance(error, TaskError) and error.uid is None:
            error.uid, error.name = task.uid, task.name
        _log_failure(task, error)
    else:
        _log.debug("task %s (%s) %s -> %s", task.uid, task.name, old.value, state.value)


def _log_failure(task: TaskFuture, error: BaseException | None) -> None:
    if isinstance(error, DependencyFailed):
        _log.info("task %s (%s) FAILED: %s", task.uid, task.name, error)
    else:
        kind = type(error).__name__ if error is not None else "error"
        _log.warning("task %s (%s) FAILED: %s: %s", task.uid, task.name, kind, error)


def value_lost(task: TaskFuture, error: BaseException) -> None:
    """A DONE task's value could not be fetched: written on the record; the state stays DONE."""
    record = task._rec
    if record is not None:
        record.lost = (type(error).__name__, str(error))
    _log.warning(
        "task %s (%s) is DONE but its value was lost: %s: %s", task.uid, task.name, type(error).__name__, error
    )
