"""Backends by name: built-in names, the ``flowbridge.adapters`` entry points, install hints."""

from __future__ import annotations

import importlib
from collections.abc import Mapping
from typing import Any

from ._errors import BackendUnavailable, ConfigError

#: name -> (``module:Class``, pip extra that installs it)
KNOWN: dict[str, tuple[str, str | None]] = {
    "concurrent": ("flowbridge._concurrent:ConcurrentExecutionBackend", None),
    "noop": ("flowbridge._noop:NoopExecutionBackend", None),
    "dask": ("flowbridge_dask:DaskExecutionBackend", "dask"),
    "parsl": ("flowbridge_parsl:ParslExecutionBackend", "parsl"),
    "radical": ("flowbridge_radical:RadicalExecutionBackend", "radical"),
    "executorlib": ("flowbridge_executorlib:ExecutorlibExecutionBackend", "executorlib"),
}
#: registry name -> the framework module its adapter drives (what its extra installs)
FRAMEWORKS = {"dask": "distributed", "parsl": "parsl", "radical": "radical.pilot", "executorlib": "executorlib"}
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
            from ._config import close_match

            known = names()
            raise ConfigError(f"unknown backend {name!r}{close_match(name, known)}; known backends: {', '.join(known)}")
        target, extra = found[name], None
    module_name, _, attr = target.partition(":")
    hint = f'pip install "flowbridge[{extra}]"' if extra else f"install the package that provides {module_name}"
    framework = FRAMEWORKS.get(name)
    if framework is not None and not _findable(framework):  # adapters that import their framework late
        raise BackendUnavailable(f"{name!r} is not installed; {hint} (no module named {framework!r})")
    try:
        cls: type = getattr(importlib.import_module(module_name), attr)
    except ImportError as exc:
        raise BackendUnavailable(f"{name!r} is not installed; {hint} ({exc})") from exc
    return cls


def _findable(module: str) -> bool:
    from importlib.util import find_spec

    try:
        return find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def create(name: str, options: Mapping[str, Any] | None = None) -> Any:
    """An adapter built from a registry name and plain-data options (as profiles hold them).

    Option names are checked against the adapter's signature before anything is
    built (adapters that take ``**options`` check theirs themselves); a wrong
    name or type is a ConfigError naming the option.
    """
    cls = load(name)
    options = dict(options or {})
    _check_names(name, cls, options)
    try:
        return cls(**options)
    except ConfigError:
        raise
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"backend {name!r}: {exc}") from exc


def _check_names(name: str, cls: type, options: dict[str, Any]) -> None:
    import inspect

    from ._config import close_match

    try:
        params = inspect.signature(cls).parameters
    except (TypeError, ValueError):
        return
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return
    takes = [p.name for p in params.values() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
    for key in options:
        if key not in takes:
            raise ConfigError(
                f"backend {name!r} has no option {key!r}{close_match(key, takes)}; it takes: {', '.join(takes)}"
            )


def _as_adapter(value: Any, where: str) -> Any:
    if isinstance(value, str):
        return create(value)
    if isinstance(value, type):
        raise TypeError(
            f"{where} takes an adapter instance, not the class: write {value.__name__}(), not {value.__name__}"
        )
    if all(hasattr(value, attr) for attr in ("submit", "start", "shutdown", "capabilities")):
        return value
    raise TypeError(
        f"{where} takes an adapter (e.g. ConcurrentExecutionBackend(...)) or a backend name "
        f"({', '.join(KNOWN)}), not {type(value).__name__}"
    )


def _by_name(backends: list[Any] | tuple[Any, ...]) -> dict[str, Any]:
    """``backend=[b1, b2]`` (asyncflow's form): routes are the adapters' names, the first is the default."""
    if not backends:
        raise TypeError("WorkflowEngine(backend=[...]) takes a non-empty list of adapters")
    adapters: dict[str, Any] = {}
    for i, item in enumerate(backends):
        adapter = _as_adapter(item, f"WorkflowEngine(backend=[...])[{i}]")
        route = str(getattr(adapter, "name", f"backend{i}"))
        if route in adapters:
            raise ValueError(
                f"WorkflowEngine(backend=[...]): two backends are named {route!r}; give each its own name, "
                f"e.g. ConcurrentExecutionBackend(name='compute'), and route tasks with backend='compute'"
            )
        adapters[route] = adapter
    return adapters


def resolve_backends(backend: Any, backends: Mapping[str, Any] | None) -> tuple[dict[str, Any], Any]:
    """The engine's adapters by route name, from ``backend=`` or ``backends=`` or the config.

    A profile named explicitly (``--profile``, FLOWBRIDGE_PROFILE) is the user saying
    "run this script on that stack": it takes the default route even when the script
    builds its own backend, with one notice. Returns the adapters and the one the
    profile replaced (None if none), which the engine closes if it was started.
    """
    from ._config import ENV_PROFILE, backend_from_profile, default_backend, explicit_profile

    if backend is not None and backends is not None:
        raise TypeError("WorkflowEngine takes backend= or backends=, not both")
    if backends is not None:
        if not isinstance(backends, Mapping) or not backends:
            raise TypeError("WorkflowEngine(backends=...) takes a non-empty dict of route name -> adapter")
        adapters = {str(k): _as_adapter(v, f"backends[{k!r}]") for k, v in backends.items()}
    elif isinstance(backend, (list, tuple)):
        adapters = _by_name(backend)
    elif backend is None:
        return {"default": default_backend()}, None
    else:
        adapters = {"default": _as_adapter(backend, "WorkflowEngine(backend=...)")}
    name = explicit_profile()
    if name is None:
        return adapters, None
    route = next(iter(adapters))
    replaced = adapters[route]
    adapters[route] = backend_from_profile(name)
    import logging

    logging.getLogger("flowbridge.engine").warning(
        "flowbridge: profile %r (%s) runs the default route instead of the script's %r",
        name,
        ENV_PROFILE,
        replaced,
    )
    return adapters, replaced
