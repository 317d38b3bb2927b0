"""Config profiles: swap the HPC stack with an environment variable, not an edit.

A profile is a backend name plus its options, as plain data::

    # flowbridge.toml (or [tool.flowbridge] in pyproject.toml)
    default = "local"

    [profiles.local]
    backend = "concurrent"

    [profiles.cluster]
    backend = "dask"
    address = "tcp://127.0.0.1:8786"

``FLOWBRIDGE_PROFILE=cluster python wf.py`` (or ``flowbridge run --profile cluster
wf.py``) then runs ``WorkflowEngine()`` on that cluster. ``FLOWBRIDGE_CONFIG``
names the file explicitly; otherwise the current directory is searched.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ._errors import ConfigError

ENV_PROFILE = "FLOWBRIDGE_PROFILE"
ENV_CONFIG = "FLOWBRIDGE_CONFIG"


def _read_toml(path: Path) -> dict[str, Any]:
    import tomllib

    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"cannot read flowbridge config {path}: {exc}") from exc


def load_config(start: Path | None = None) -> tuple[Path | None, dict[str, Any]]:
    """The config file in force and its flowbridge table (empty when there is none)."""
    explicit = os.environ.get(ENV_CONFIG)
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"{ENV_CONFIG}={explicit} does not name a file")
        data = _read_toml(path)
        return path, data.get("tool", {}).get("flowbridge", data) if path.name == "pyproject.toml" else data
    here = start or Path.cwd()
    own = here / "flowbridge.toml"
    if own.is_file():
        return own, _read_toml(own)
    pyproject = here / "pyproject.toml"
    if pyproject.is_file() and "[tool.flowbridge" in pyproject.read_text(errors="replace"):
        return pyproject, _read_toml(pyproject).get("tool", {}).get("flowbridge", {})
    return None, {}


def profile(name: str) -> tuple[str, dict[str, Any]]:
    """``(backend name, options)`` of a named profile; ConfigError naming the fix otherwise."""
    path, table = load_config()
    profiles = table.get("profiles", {})
    if path is None:
        raise ConfigError(
            f"profile {name!r} asked for, but there is no flowbridge.toml here, no [tool.flowbridge] "
            f"in pyproject.toml and no {ENV_CONFIG}; create one with [profiles.{name}]"
        )
    if not isinstance(profiles, dict) or name not in profiles:
        known = ", ".join(sorted(profiles)) if isinstance(profiles, dict) and profiles else "none"
        raise ConfigError(f"no profile {name!r} in {path}; profiles there: {known}")
    options = dict(profiles[name])
    backend = options.pop("backend", None)
    if not isinstance(backend, str):
        raise ConfigError(f'profile {name!r} in {path} needs backend = "<name>" (e.g. "dask")')
    return backend, options


def backend_from_profile(name: str) -> Any:
    from ._registry import create

    backend, options = profile(name)
    return create(backend, options)


def default_backend() -> Any:
    """The backend of ``WorkflowEngine()``: FLOWBRIDGE_PROFILE, the config's default, or threads."""
    name = os.environ.get(ENV_PROFILE)
    if not name:
        _, table = load_config()
        name = table.get("default")
    if name:
        return backend_from_profile(name)
    from ._concurrent import ConcurrentExecutionBackend

    return ConcurrentExecutionBackend()
