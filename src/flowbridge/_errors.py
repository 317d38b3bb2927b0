"""One exception hierarchy; adapters translate their framework's errors into it."""

from __future__ import annotations


class FlowbridgeError(Exception):
    """Base of every error flowbridge raises itself."""


class TaskFailed(FlowbridgeError):
    """A task ended in failure that is not a Python exception of its own.

    Executable tasks raise it for a non-zero exit status; ``exit_code`` and the
    tail of ``stderr`` are kept so the caller can act on them.
    """

    def __init__(self, message: str, *, exit_code: int | None = None, stderr: str = "") -> None:
        super().__init__(message)
        self.exit_code = exit_code
        self.stderr = stderr

    def __reduce__(self):  # keep the fields across process boundaries
        return (_rebuild_task_failed, (str(self), self.exit_code, self.stderr))


def _rebuild_task_failed(message: str, exit_code: int | None, stderr: str) -> TaskFailed:
    return TaskFailed(message, exit_code=exit_code, stderr=stderr)


class DependencyFailed(FlowbridgeError):
    root: BaseException
    origin: str
    depth: int

    """A task was not run because a task it depends on failed.

    ``__cause__`` is the dependency's own error, so following the chain of
    causes leads to the root failure; ``root`` holds that root directly.
    """

    def __init__(self, task: str, dependency: str, cause: BaseException) -> None:
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
        super().__init__(f"task {task} was not run: dependency {path} failed with {type(root).__name__}: {root}")
        self.task = task
        self.dependency = dependency
        self.origin = origin  # the task whose own error started the failure
        self.depth = depth
        self.root = root
        self.__cause__ = cause


class TaskTimeout(FlowbridgeError, TimeoutError):
    """A task ran past its ``timeout=``; it was cancelled."""


class WorkerLost(FlowbridgeError):
    """The worker, process or batch job running a task died before it finished."""


class UnsupportedResource(FlowbridgeError, ValueError):
    """A task asked for a resource its adapter cannot honour."""


class BackendUnavailable(FlowbridgeError, ImportError):
    """A backend was named whose package is not installed."""


class ConfigError(FlowbridgeError, ValueError):
    """A configuration file, profile or option is invalid."""


class EngineClosed(FlowbridgeError, RuntimeError):
    """Work was submitted to an engine that has been shut down."""
