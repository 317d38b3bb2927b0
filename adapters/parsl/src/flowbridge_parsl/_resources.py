"""flowbridge Resources -> Parsl's ``parsl_resource_specification`` (and an app's ``walltime``).

The executor has the last word: a key it would refuse at launch is refused here, at
submit, as UnsupportedResource. A plain HTEX takes only ``priority`` (through
``extra``); an HTEX in MPI mode takes ``num_ranks`` and its other MPI keys; Work Queue
and TaskVine take ``cores``, ``memory`` (MB), ``gpus`` and more.
"""

from __future__ import annotations

import math
from typing import Any

from flowbridge import Resources
from flowbridge.adapter import TaskSpec
from flowbridge.toolkit.checks import cannot_honour

#: Resources field -> parsl_resource_specification key; the value transform.
KEYS: dict[str, tuple[str, Any]] = {
    "cores": ("cores", None),
    "gpus": ("gpus", None),
    "memory": ("memory", lambda b: math.ceil(b / 1024**2)),  # MB, as Work Queue / TaskVine count
    "ranks": ("num_ranks", None),
}
#: What a plain HighThroughputExecutor accepts (what flowbridge's own HTEX is).
HTEX_KEYS = frozenset({"priority"})


def _refused(executor: Any, spec: dict[str, Any]) -> set[str]:
    """Keys of ``spec`` the executor would refuse (none for executors that do not say)."""
    if executor is None:
        return set(spec) - HTEX_KEYS
    validate = getattr(executor, "validate_resource_spec", None)
    if validate is not None:
        from parsl.executors.errors import InvalidResourceSpecification

        try:
            validate(dict(spec))
        except InvalidResourceSpecification as exc:
            return set(exc.invalid_keys)
        except Exception:  # e.g. MPI mode missing a companion key: let the executor say it at launch
            return set()
        return set()
    from parsl.executors.threads import ThreadPoolExecutor

    if isinstance(executor, ThreadPoolExecutor):
        return set(spec)
    return set()


class ResourceMap:
    """Translations cached per Resources value, checked against the adapter's executors."""

    def __init__(self, adapter: Any) -> None:
        self._adapter = adapter
        self._cache: dict[Resources, tuple[dict[str, Any], float | None]] = {}

    def translate(self, task: TaskSpec) -> tuple[dict[str, Any], float | None]:
        res = task.resources
        assert res is not None
        hit = self._cache.get(res)
        if hit is not None:
            return hit
        spec: dict[str, Any] = {}
        origin: dict[str, str] = {}
        refused: list[str] = []
        if res.threads is not None:
            refused.append("threads (Parsl has no per-task thread count)")
        for field, (key, convert) in KEYS.items():
            value = getattr(res, field)
            if value is not None:
                spec[key] = convert(value) if convert else value
                origin[key] = field if key == field else f"{field} (as {key!r})"
        for key, value in res.extra.items():
            spec[key] = value
            origin[key] = f"extra[{key!r}]"
        executors = self._adapter._executor_objects() or [None]
        for executor in executors:
            bad = _refused(executor, spec)
            if bad:
                label = "flowbridge's HighThroughputExecutor" if executor is None else repr(executor.label)
                refused.append(f"{', '.join(origin[k] for k in sorted(bad))} (executor {label} refuses it)")
        if refused:
            raise cannot_honour(
                self._adapter.name,
                task,
                "; ".join(refused),
                "a plain HighThroughputExecutor takes Resources(walltime=...) and extra={'priority': n}",
                "route the task to a backend that takes the rest (backend=...), or drop the field",
            )
        result = (spec, res.walltime)
        self._cache[res] = result
        return result
