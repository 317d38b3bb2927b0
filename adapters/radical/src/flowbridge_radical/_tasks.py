"""flowbridge tasks as RADICAL-Pilot TaskDescriptions, and finished RP tasks as outcomes.

Executables become plain pilot tasks (a ``str`` through ``/bin/sh -c``, an argv
sequence as executable + arguments, which RP quotes one by one). Functions become
RAPTOR function tasks that run :func:`flowbridge_radical._remote.run`.

Resources (see docs/adapters/radical.md):

========================  ==========================  =============================
flowbridge                executable task             function task (RAPTOR)
========================  ==========================  =============================
ranks                     ranks (MPI when > 1)        1 only
cores (per rank)          cores_per_rank              <= the worker's cores
gpus (per rank)           gpus_per_rank               <= the worker's gpus
memory (per rank)         mem_per_rank (MiB, ceil)    refused (RAPTOR ignores it)
walltime                  timeout (s) -> TaskTimeout  timeout (s) -> TaskTimeout
threads                   refused                     refused
extra                     environment, pre_exec,      environment
                          post_exec, named_env,
                          gpu_type, threading_type,
                          lfs_per_rank, tags, use_mpi
========================  ==========================  =============================
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Mapping
from typing import Any

from flowbridge import TaskFailed, TaskTimeout, UnsupportedResource
from flowbridge.adapter import TaskSpec
from flowbridge.worker import Ran

from . import _remote

STDERR_TAIL = 2000
#: RP keeps only the last 1024 characters of stdout/stderr; longer ones are read from the sandbox.
RP_KEEPS = 1024

_LIST_OF_STR = "a list of str"
EXECUTABLE_EXTRA: dict[str, tuple[type | tuple[type, ...], str]] = {
    "environment": (dict, "a dict of str -> str"),
    "pre_exec": (list, _LIST_OF_STR),
    "post_exec": (list, _LIST_OF_STR),
    "named_env": (str, "a str"),
    "gpu_type": (str, "a str"),
    "threading_type": (str, "a str"),
    "lfs_per_rank": (int, "an int (MB)"),
    "tags": (dict, "a dict"),
    "use_mpi": (bool, "a bool"),
}
FUNCTION_EXTRA = {"environment": EXECUTABLE_EXTRA["environment"]}


def _refuse(spec: TaskSpec, what: str) -> UnsupportedResource:
    return UnsupportedResource(
        f"the 'radical' backend cannot honour {what} for task {spec.name} ({spec.uid}); "
        f"see docs/adapters/radical.md for what maps to RADICAL-Pilot"
    )


def _extra(
    spec: TaskSpec, extra: Mapping[str, Any], allowed: Mapping[str, tuple[Any, str]], kind: str
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in extra.items():
        if key not in allowed:
            raise _refuse(
                spec,
                f"extra={{{key!r}: ...}} on {kind} tasks (it takes {', '.join(sorted(allowed))})",
            )
        typ, described = allowed[key]
        if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
            raise _refuse(spec, f"extra[{key!r}]={value!r}: it must be {described}")
        if key == "environment":
            value = {str(k): str(v) for k, v in value.items()}
        elif typ is list:
            if not all(isinstance(v, str) for v in value):
                raise _refuse(spec, f"extra[{key!r}]={value!r}: it must be {described}")
            value = list(value)
        out[key] = value
    return out


def executable_fields(spec: TaskSpec, *, local: bool) -> dict[str, Any]:
    """TaskDescription fields for an executable task (without uid)."""
    command = spec.command
    res = spec.resources
    if isinstance(command, str):
        if res is None or (res.ranks or 1) == 1:
            command = _timed(command)
        fields: dict[str, Any] = {"executable": "/bin/sh", "arguments": ["-c", command]}
    else:
        argv = list(command or ())
        fields = {"executable": argv[0], "arguments": argv[1:]}
    if res is not None:
        if res.ranks is not None:
            fields["ranks"] = res.ranks
        if res.cores is not None:
            fields["cores_per_rank"] = res.cores
        if res.gpus is not None:
            fields["gpus_per_rank"] = res.gpus
        if res.memory is not None:
            fields["mem_per_rank"] = -(-res.memory // 2**20)
        if res.walltime is not None:
            fields["timeout"] = float(res.walltime)
        fields.update(_extra(spec, res.extra, EXECUTABLE_EXTRA, "executable"))
        if local and (res.ranks or 1) > 1 and os.geteuid() == 0:
            # Open MPI's launcher refuses to start as root unless told twice; the task's
            # environment reaches the ranks only, so tell mpiexec before it starts.
            fields["pre_launch"] = [
                "export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1",
                *fields.get("pre_launch", []),
            ]
    return fields


def function_fields(spec: TaskSpec, *, worker_cores: int, worker_gpus: int) -> dict[str, Any]:
    """TaskDescription fields for a RAPTOR function task (without uid, raptor_id, function)."""
    fields: dict[str, Any] = {}
    res = spec.resources
    if res is None:
        return fields
    if (res.ranks or 1) > 1:
        raise _refuse(
            spec,
            f"ranks={res.ranks} on a function task (RAPTOR runs functions on one rank; "
            f"run MPI programs as executable tasks)",
        )
    if res.cores is not None:
        if res.cores > worker_cores:
            raise _refuse(
                spec, f"cores={res.cores} on a function task (a RAPTOR worker has {worker_cores}; raise worker_cores=)"
            )
        fields["cores_per_rank"] = res.cores
    if res.gpus:
        if res.gpus > worker_gpus:
            raise _refuse(
                spec, f"gpus={res.gpus} on a function task (a RAPTOR worker has {worker_gpus}; set worker_gpus=)"
            )
        fields["gpus_per_rank"] = res.gpus
    if res.memory is not None:
        raise _refuse(spec, "memory on a function task (RAPTOR does not reserve memory)")
    if res.walltime is not None:
        fields["timeout"] = float(res.walltime)
    fields.update(_extra(spec, res.extra, FUNCTION_EXTRA, "function"))
    return fields


# -- outcomes (called in RADICAL-Pilot's callback thread) ------------------------------------


def sandbox_path(task: Any) -> str | None:
    """The task sandbox as a local path, if RP knows it (it may be on another machine)."""
    url = getattr(task, "task_sandbox", None)
    if not url:
        return None
    return urllib.parse.urlparse(str(url)).path or None


def _full(task: Any, kept: str | None, suffix: str) -> str:
    """The whole stdout/stderr: RP keeps the last 1024 characters; the sandbox has the rest."""
    kept = kept or ""
    if len(kept) < RP_KEEPS - 24:
        return kept
    where = sandbox_path(task)
    if where:
        name = (task.description or {}).get(suffix) or f"{task.uid}.{'out' if suffix == 'stdout' else 'err'}"
        try:
            with open(os.path.join(where, name), errors="replace") as fh:
                return fh.read()
        except OSError:
            pass
    return kept


TIMES = "flowbridge.times"


def _timed(command: str) -> str:
    """The shell command, writing its start (time, pid) and end time into the sandbox's TIMES file."""
    return (
        f'printf "%s %s\\n" "$(date +%s.%N)" $$ > {TIMES}\n'
        f"trap 'date +%s.%N >> {TIMES}' EXIT\n{command}"
    )


def _ran(task: Any) -> tuple[float, float, tuple[str, int, str]] | None:
    """When and where a timed command ran, from its sandbox (None if it wrote nothing there)."""
    where = sandbox_path(task)
    if not where:
        return None
    try:
        with open(os.path.join(where, TIMES)) as fh:
            first, end = fh.read().split("\n")[:2]
        start, pid = first.split()
        return float(start), float(end), (os.uname().nodename, int(pid), "command")
    except (OSError, ValueError):
        return None


def executable_outcome(task: Any, state: str, command: Any) -> tuple[str, Any]:
    """(kind, value) of a finished executable task: its whole stdout, or TaskFailed.

    With the times the command wrote (see :func:`_timed`), the value is a
    ``flowbridge.worker.Ran`` and an error carries them in ``_fb_ran``.
    """
    ran = _ran(task)
    if state == "DONE":
        stdout = _full(task, task.stdout, "stdout")
        return _remote.OK, (stdout if ran is None else Ran(stdout, *ran))
    stderr = _full(task, task.stderr, "stderr")[-STDERR_TAIL:]
    code = task.exit_code
    shown = command if isinstance(command, str) else " ".join(command or ())
    if code is None:
        why = task.exception or "no exit status"
        message = f"command {shown!r} failed in RADICAL-Pilot ({why})"
    else:
        message = f"command {shown!r} exited with status {code}"
    if stderr.strip():
        message += f"; stderr: {stderr.strip()}"
    error = TaskFailed(message, exit_code=code, stderr=stderr)
    if ran is not None:
        error._fb_ran = ran  # type: ignore[attr-defined]
    return _remote.ERROR, error


def function_outcome(task: Any, state: str, walltime: float | None, label: str) -> tuple[str, Any]:
    """(kind, value) of a finished RAPTOR function task."""
    try:
        return _remote.outcome(task.return_value)
    except Exception:
        pass
    exception = str(task.exception or "")
    if walltime is not None and "TimeoutError" in exception:
        return _remote.ERROR, TaskTimeout(f"task {label} ran past its walltime of {walltime} s")
    stderr = (task.stderr or "")[-STDERR_TAIL:]
    detail = exception or stderr.strip() or f"state {state}"
    return _remote.ERROR, TaskFailed(
        f"function task {label} failed in RADICAL-Pilot's RAPTOR worker: {detail}", stderr=stderr
    )
