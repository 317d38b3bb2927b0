"""Checking what an executable task's body returned."""

from __future__ import annotations

import os
from typing import Any

from ._errors import InvalidTaskBody


def as_command(value: Any, task: Any) -> str | tuple[str, ...]:
    """A ``str`` (run by a shell) or a tuple of argv strings (run without one); else InvalidTaskBody."""
    where = f"executable task {task.name} ({task.uid})"
    if isinstance(value, str):
        if value.strip():
            return value
        raise InvalidTaskBody(f"{where} returned an empty command; return a shell command str or an argv list")
    if isinstance(value, (list, tuple)):
        if not value:
            raise InvalidTaskBody(f"{where} returned an empty argv list; return e.g. ['/bin/echo', 'hi']")
        argv = []
        for item in value:
            if isinstance(item, (str, os.PathLike)):
                argv.append(os.fspath(item))
            elif isinstance(item, (int, float)) and not isinstance(item, bool):
                argv.append(str(item))
            else:
                raise InvalidTaskBody(
                    f"{where} returned an argv list holding {item!r} ({type(item).__name__}); "
                    f"argv items must be str, path or number"
                )
        return tuple(argv)
    raise InvalidTaskBody(
        f"{where} must return a command, a str run by a shell or an argv list, not {type(value).__name__} ({value!r})"
    )


def as_prompt(value: Any, task: Any) -> str:
    """A prompt task's body must give a non-empty str; else InvalidTaskBody."""
    if isinstance(value, str) and value.strip():
        return value
    raise InvalidTaskBody(
        f"prompt task {task.name} ({task.uid}) must return a non-empty prompt str, "
        f"not {type(value).__name__} ({value!r})"
    )
