"""Checks every adapter makes, with one message shape each.

- :func:`count`: an option that is a whole number (workers, blocks, cores): ``Owner: name=value
  must be an int >= least[, or None]``, raised as :class:`~flowbridge.ConfigError` unless told.
- :func:`cannot_honour`: a task's request an adapter refuses: ``the 'name' backend cannot honour
  WHAT for task NAME (UID): WHY; FIX``, an :class:`~flowbridge.UnsupportedResource` that carries
  the task's ``uid`` and ``name``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._errors import ConfigError, UnsupportedResource

if TYPE_CHECKING:
    from ..adapter import TaskSpec

__all__ = ["ROUTE", "cannot_honour", "count"]

#: The fix most refusals share.
ROUTE = "route the task to a backend that does (backend=...), or drop the field"


def count(
    owner: str,
    name: str,
    value: Any,
    *,
    least: int = 1,
    optional: bool = False,
    error: type[Exception] = ConfigError,
) -> int | None:
    """``value`` when it is an int >= ``least`` (None too, when ``optional``); else ``error``."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        raise error(f"{owner}: {name}={value!r} must be an int >= {least}{', or None' if optional else ''}")
    return value


def cannot_honour(backend: str, task: TaskSpec | str, what: str, why: str, fix: str = ROUTE) -> UnsupportedResource:
    """The error for a request ``backend`` refuses (``task``: its spec, or a label ``name (uid)``)."""
    if isinstance(task, str):
        label, uid, name = task, None, None
    else:
        label, uid, name = f"{task.name} ({task.uid})", task.uid, task.name
        if uid == "at decoration":  # the spec a decorator's resources are checked with: no task yet
            uid = name = None
    error = UnsupportedResource(f"the {backend!r} backend cannot honour {what} for task {label}: {why}; {fix}")
    error.uid, error.name = uid, name
    return error
