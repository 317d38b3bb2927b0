"""The seeds' resource dict, as a RADICAL-Pilot PilotDescription (plus a resource config override).

``{'resource': 'ornl.summit', 'queue': 'gpu', 'nodes': 100, 'gpus_per_node': 6,
'walltime': 120}`` maps key by key; see docs/adapters/radical.md for the table.
``cores_per_node`` and ``gpus_per_node`` are facts about the machine, which
RADICAL-Pilot keeps in its resource configuration, not in the pilot description:
they become a user resource config written into the run directory.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flowbridge import ConfigError
from flowbridge.toolkit.checks import count

DEFAULT_RESOURCE = "local.localhost"
#: Pilot runtime in minutes when no walltime is given: a local pilot lives as long as the
#: session (a day at most); a batch job gets an hour.
LOCAL_RUNTIME = 24 * 60
BATCH_RUNTIME = 60

_INTS = ("nodes", "cores_per_node", "gpus_per_node", "cores", "gpus", "memory")
_STRS = ("resource", "queue", "project", "access_schema", "job_name")
KNOWN = frozenset({*_INTS, *_STRS, "walltime"})
#: Keys the adapter sets itself: giving them would break clean-up or the user's process.
_OURS = {
    "sandbox": "sandboxes live in flowbridge's run directory (run_dir=...)",
    "exit_on_error": "True would make RADICAL-Pilot SIGTERM your process when the pilot fails",
    "cleanup": "the run directory is removed at shutdown (keep_run_dir=True keeps it)",
    "runtime": "use 'walltime' (minutes)",
}


def is_local(resource: str) -> bool:
    return resource.split(".", 1)[0] == "local"


def describe(resources: Mapping[str, Any] | None, sandbox: Path) -> tuple[dict[str, Any], dict[str, int]]:
    """The PilotDescription fields and the resource-config overrides for a seed-style dict."""
    given = dict(resources or {})
    for key, why in _OURS.items():
        if key in given:
            raise ConfigError(f"RadicalExecutionBackend: {key!r} is set by flowbridge ({why})")
    unknown = sorted(set(given) - KNOWN)
    if unknown:
        raise ConfigError(
            f"RadicalExecutionBackend: unknown resource key(s) {', '.join(map(repr, unknown))}; "
            f"known: {', '.join(sorted(KNOWN))}"
        )
    for key in _STRS:
        if key in given and not (isinstance(given[key], str) and given[key]):
            raise ConfigError(f"RadicalExecutionBackend: {key!r} must be a non-empty str, not {given[key]!r}")
    for key in _INTS:
        count("RadicalExecutionBackend", key, given.get(key), least=0, optional=True)
    walltime = given.get("walltime")
    if walltime is not None and (isinstance(walltime, bool) or not isinstance(walltime, (int, float)) or walltime <= 0):
        raise ConfigError(f"RadicalExecutionBackend: 'walltime' is minutes (a number > 0), not {walltime!r}")

    resource = given.get("resource", DEFAULT_RESOURCE)
    if "." not in resource:
        raise ConfigError(
            f"RadicalExecutionBackend: 'resource' is 'site.host' (e.g. 'local.localhost'), not {resource!r}"
        )
    local = is_local(resource)
    pd: dict[str, Any] = {
        "resource": resource,
        "runtime": int(-(-walltime // 1)) if walltime is not None else (LOCAL_RUNTIME if local else BATCH_RUNTIME),
        "sandbox": str(sandbox),
        "exit_on_error": False,
        # A local sandbox lies in the run dir, removed at shutdown: RP's clean-up would remove it as
        # soon as the pilot ends, with the agent's own account of why it failed.
        "cleanup": not local,
    }
    for key in ("queue", "project", "access_schema", "job_name", "cores", "gpus", "memory"):
        if given.get(key) is not None:
            pd[key] = given[key]
    nodes = given.get("nodes")
    if nodes:
        pd["nodes"] = nodes
    elif not given.get("cores"):
        # A pilot with neither nodes nor cores gets no nodes at all ("ResourceManager has no
        # nodes left to run tasks"): default to one whole node.
        pd["nodes"] = 1
    overrides = {k: given[k] for k in ("cores_per_node", "gpus_per_node") if given.get(k) is not None}
    return pd, overrides


def write_resource_config(run_dir: Path, resource: str, overrides: Mapping[str, int]) -> Path:
    """A RADICAL_CONFIG_USER_DIR holding the user's own configs plus ``overrides`` for ``resource``.

    Returns the directory to export as ``RADICAL_CONFIG_USER_DIR``.
    """
    user_base = Path(os.environ.get("RADICAL_CONFIG_USER_DIR") or os.path.expanduser("~"))
    ours = run_dir / "config"
    for module in ("pilot", "utils"):
        theirs = user_base / ".radical" / module / "configs"
        if theirs.is_dir():
            shutil.copytree(theirs, ours / ".radical" / module / "configs", dirs_exist_ok=True)
    configs = ours / ".radical" / "pilot" / "configs"
    configs.mkdir(parents=True, exist_ok=True)
    site, host = resource.split(".", 1)
    path = configs / f"resource_{site}.json"
    data: dict[str, Any] = _read_json(path) if path.exists() else {}
    entry = dict(data.get(host) or {})
    entry.update(overrides)
    data[host] = entry
    path.write_text(json.dumps(data, indent=2))
    return ours


def _read_json(path: Path) -> dict[str, Any]:
    """RADICAL's config files: JSON with whole-line ``#`` comments."""
    lines = [line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")]
    return dict(json.loads("\n".join(lines)))
