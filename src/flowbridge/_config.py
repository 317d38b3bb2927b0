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
TOP_KEYS = ("default", "profiles")


def close_match(word: str, choices: Any) -> str:
    """`` (did you mean 'x'?)`` for the nearest of ``choices``, or nothing."""
    import difflib

    found = difflib.get_close_matches(word, [str(c) for c in choices], n=1, cutoff=0.6)
    return f" (did you mean {found[0]!r}?)" if found else ""


def _check_table(path: Path, table: dict[str, Any]) -> dict[str, Any]:
    """Unknown keys and wrong shapes are errors, naming the file and the key, never ignored."""
    for key in table:
        if key not in TOP_KEYS:
            raise ConfigError(
                f"{path}: unknown key {key!r}{close_match(key, TOP_KEYS)}; the flowbridge table takes "
                f"{', '.join(TOP_KEYS)} (profiles as [profiles.NAME])"
            )
    profiles = table.get("profiles", {})
    if not isinstance(profiles, dict) or not all(isinstance(v, dict) for v in profiles.values()):
        raise ConfigError(f"{path}: profiles must be tables, e.g. [profiles.local] with backend = \"concurrent\"")
    default = table.get("default")
    if default is not None and (not isinstance(default, str) or default not in profiles):
        raise ConfigError(
            f"{path}: default = {default!r} names no profile{close_match(str(default), profiles)}; "
            f"profiles there: {', '.join(sorted(profiles)) or 'none'}"
        )
    return table


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
        table = data.get("tool", {}).get("flowbridge", {}) if path.name == "pyproject.toml" else data
        return path, _check_table(path, table)
    here = start or Path.cwd()
    own = here / "flowbridge.toml"
    if own.is_file():
        return own, _check_table(own, _read_toml(own))
    pyproject = here / "pyproject.toml"
    if pyproject.is_file() and "[tool.flowbridge" in pyproject.read_text(errors="replace"):
        return pyproject, _check_table(pyproject, _read_toml(pyproject).get("tool", {}).get("flowbridge", {}))
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
    if name not in profiles:
        known = ", ".join(sorted(profiles)) or "none"
        raise ConfigError(f"no profile {name!r} in {path}{close_match(name, profiles)}; profiles there: {known}")
    options = dict(profiles[name])
    backend = options.pop("backend", None)
    if not isinstance(backend, str):
        raise ConfigError(f'profile {name!r} in {path} needs backend = "<name>" (e.g. "dask")')
    return backend, options


def backend_from_profile(name: str) -> Any:
    """The adapter a profile describes; errors name the file, the profile and the key."""
    from ._registry import create

    backend, options = profile(name)
    try:
        return create(backend, options)
    except ConfigError as exc:
        path, _ = load_config()
        raise ConfigError(f"profile {name!r} in {path}: {exc}") from None


def explicit_profile() -> str | None:
    """The profile the user asked for by name (``--profile`` / FLOWBRIDGE_PROFILE), if any."""
    return os.environ.get(ENV_PROFILE) or None


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
