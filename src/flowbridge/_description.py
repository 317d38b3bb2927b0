"""``task_description=`` (RADICAL-AsyncFlow's per-task options) as a flowbridge Resources request.

Keys with a neutral meaning become Resources fields, under RADICAL-Pilot's
TaskDescription names or flowbridge's own; every other key goes to
``Resources.extra``, which RADICAL-Pilot takes as TaskDescription fields and
other adapters refuse with UnsupportedResource naming the key. Nothing is dropped.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any

from ._resources import FIELDS, Resources

#: TaskDescription key -> Resources field (and a factor to its unit)
NEUTRAL: dict[str, tuple[str, int]] = {
    "ranks": ("ranks", 1),
    "cores_per_rank": ("cores", 1),
    "gpus_per_rank": ("gpus", 1),
    "mem_per_rank": ("memory", 2**20),  # RADICAL-Pilot counts MiB
    "timeout": ("walltime", 1),
    **{field: (field, 1) for field in FIELDS},
}


def check(description: Any, where: str) -> dict[str, Any]:
    if not isinstance(description, Mapping):
        raise TypeError(f"{where}: task_description must be a dict of task options, not {type(description).__name__}")
    return dict(description)


def declared(func: Any) -> dict[str, Any]:
    """A ``task_description={...}`` default in the function's own signature (asyncflow's way)."""
    try:
        param = inspect.signature(func).parameters.get("task_description")
    except (TypeError, ValueError):
        return {}
    if param is None or param.default is inspect.Parameter.empty:
        return {}
    name = getattr(func, "__name__", func)
    return check(param.default, f"the default of {name}(task_description=...)")


def resources(description: Mapping[str, Any], base: Resources | None, where: str) -> Resources | None:
    """``base`` with the description laid over it; ValueError/TypeError naming the key at fault."""
    if not description:
        return base
    fields = base.requested() if base is not None else {}
    extra = dict(fields.pop("extra", {}))
    for key, value in description.items():
        if key == "type" and value == "mpi":  # asyncflow's marker: ranks= already says how many
            continue
        if key in NEUTRAL:
            field, unit = NEUTRAL[key]
            if unit != 1 and isinstance(value, (int, float)) and not isinstance(value, bool):
                value = int(value * unit)
            fields[field] = value
        else:
            extra[key] = value
    try:
        return Resources(**fields, extra=extra or None)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"{where}: task_description: {exc}") from None
