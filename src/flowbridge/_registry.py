"""Backends by name: built-in names, the ``flowbridge.adapters`` entry points, install hints."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from ._errors import BackendUnavailable, ConfigError

#: name -> (``module:Class``, pip extra that installs it)
KNOWN: dict[str, tuple[str, str | None]] = {
    "concurrent": ("flowbridge._concurrent:ConcurrentExecutionBackend", None),
    "dask": ("flowbridge_dask:DaskExecutionBackend", "dask"),
    "parsl": ("flowbridge_parsl:ParslExecutionBackend", "parsl"),
    "radical": ("flowbridge_radical:RadicalExecutionBackend", "radical"),
    "executorlib": ("flowbridge_executorlib:ExecutorlibExecutionBackend", "executorlib"),
}
#: public class name -> registry name, for ``from flowbridge import DaskExecutionBackend``
CLASS_NAMES = {target.rpartition(":")[2]: name for name, (target, _) in KNOWN.items()}
GROUP = "flowbridge.adapters"


def _entry_points() -> dict[str, str]:
    from importlib.metadata import entry_points

    return {ep.name: ep.value for ep in entry_points(group=GROUP)}


def names() -> list[str]:
    """Every backend name known: built in, or registered by an installed package."""
    return sorted({*KNOWN, *_entry_points()})


def load(name: str) -> type:
    """The adapter class registered under ``name``; BackendUnavailable if it is not installed."""
    if name in KNOWN:
        target, extra = KNOWN[name]
    else:
        found = _entry_points()
        if name not in found:
            raise ValueError(f"unknown backend {name!r}; known backends: {', '.join(names())}")
        target, extra = found[name], None
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        hint = f'pip install "flowbridge[{extra}]"' if extra else f"install the package that provides {module_name}"
        raise BackendUnavailable(f"{name!r} is not installed; {hint} ({exc})") from exc
    cls: type = getattr(module, attr)
    return cls


def create(name: str, options: Mapping[str, Any] | None = None) -> Any:
    """An adapter built from a registry name and plain-data options (as profiles hold them)."""
    cls = load(name)
    try:
        return cls(**dict(options or {}))
    except TypeError as exc:
        raise ConfigError(f"backend {name!r} does not take these options: {exc}") from exc


def _as_adapter(value: Any, where: str) -> Any:
    if isinstance(value, str):
        return create(value)
    if all(hasattr(value, attr) for attr in ("submit", "start", "shutdown", "capabilities")):
        return value
    raise TypeError(
        f"{where} takes an adapter (e.g. ConcurrentExecutionBackend(...)) or a backend name "
        f"({', '.join(KNOWN)}), not {type(value).__name__}"
    )


def resolve_backends(backend: Any, backends: Mapping[str, Any] | None) -> dict[str, Any]:
    """The engine's adapters by route name, from ``backend=`` or ``backends=`` or the config."""
    if backend is not None and backends is not None:
        raise TypeError("WorkflowEngine takes backend= or backends=, not both")
    if backends is not None:
        if not isinstance(backends, Mapping) or not backends:
            raise TypeError("WorkflowEngine(backends=...) takes a non-empty dict of route name -> adapter")
        return {str(k): _as_adapter(v, f"backends[{k!r}]") for k, v in backends.items()}
    if backend is None:
        from ._config import default_backend

        return {"default": default_backend()}
    return {"default": _as_adapter(backend, "WorkflowEngine(backend=...)")}
