"""One exception hierarchy; adapters translate their framework's errors into it."""

from __future__ import annotations

from typing import Any


class FlowbridgeError(Exception):
    """Base of every error flowbridge raises itself."""


class TaskError(FlowbridgeError):
    """Base of the errors that belong to one task: ``uid`` and ``name`` say which.

    The engine fills both in when the error ends a task (they are None on an
    error raised at decoration, before any task exists).
    """

    uid: str | None = None
    name: str | None = None


class TaskFailed(TaskError):
    """A task ended in failure that is not a Python exception of its own.

    Executable tasks raise it for a non-zero exit status; ``exit_code`` and the
    tail of ``stderr`` are kept so the caller can act on them.
    """

    def __init__(self, message: str, *, exit_code: int | None = None, stderr: str = "") -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.stderr = stderr

    def __reduce__(self) -> tuple[Any, ...]:  # keep the fields across process boundaries
        return (_rebuild_task_failed, (str(self), self.exit_code, self.stderr))


def _rebuild_task_failed(message: str, exit_code: int | None, stderr: str) -> TaskFailed:
    return TaskFailed(message, exit_code=exit_code, stderr=stderr)


class DependencyFailed(TaskError):
    """A task was not run because a task it depends on failed.

    ``__cause__`` is the dependency's own error, so following the chain of
    causes leads to the root failure; ``root`` (also ``root_cause``, asyncflow's
    name) holds that root directly. ``failed_dependencies`` names every direct
    dependency known to have failed when the task was failed (asyncflow's
    DependencyFailureError, an alias of this class, has the same attribute).
    """

    root: BaseException
    origin: str
    depth: int

    def __init__(
        self, task: str, dependency: str, cause: BaseException, failed_dependencies: list[str] | None = None
    ) -> None:
        root: BaseException
        if isinstance(cause, DependencyFailed):
            root, origin, depth = cause.root, cause.origin, cause.depth + 1
        else:
            root, origin, depth = cause, dependency, 1
        if depth == 1:
            path = dependency
        elif depth == 2:
            path = f"{dependency} <- {origin}"
        else:
            path = f"{dependency} <- ... <- {origin}"
        failed = list(failed_dependencies) if failed_dependencies else [dependency]
        also = f" (failed dependencies: {', '.join(failed)})" if len(failed) > 1 else ""
        super().__init__(f"task {task} was not run: dependency {path} failed with {type(root).__name__}: {root}{also}")
        self.task = task
        self.dependency = dependency
        self.failed_dependencies = failed
        self.origin = origin  # the task whose own error started the failure
        self.depth = depth
        self.root = root
        self.__cause__ = cause

    @property
    def root_cause(self) -> BaseException:
        """asyncflow's name for :attr:`root`."""
        return self.root


#: RADICAL-AsyncFlow's name for DependencyFailed.
DependencyFailureError = DependencyFailed


class TaskTimeout(TaskError, TimeoutError):
    """A task ran past its ``timeout=``; it was cancelled."""


class WorkerLost(TaskError):
    """The worker, process or batch job running a task died before it finished."""


class UnsupportedResource(TaskError, ValueError):
    """A task asked for a resource its adapter cannot honour."""


class InvalidTaskBody(TaskError, TypeError, ValueError):
    """An executable or prompt task's body returned something that is not a command (or a prompt).

    Both a TypeError (what flowbridge raised first) and a ValueError (what
    RADICAL-AsyncFlow raises), so code written for either catches it.
    """


class BackendUnavailable(FlowbridgeError, ImportError):
    """A backend was named whose package is not installed."""


class ConfigError(FlowbridgeError, ValueError):
    """A configuration file, profile or option is invalid."""


class EngineClosed(FlowbridgeError, RuntimeError):
    """Work was submitted to an engine that has been shut down."""
