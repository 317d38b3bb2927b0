"""kind="slurm_cluster": executorlib's SlurmClusterExecutor (one sbatch per task through pysqa), owned.

Every job flowbridge submits is named ``fb-<run dir name>-<task uid>``: shutdown and ``kill()``
cancel exactly those, never a job of the user's, and a watcher that looks at them every 2 s fails
a task whose job was cancelled or died (executorlib itself looks every 30 s).
"""

from __future__ import annotations

import subprocess
import warnings
from pathlib import Path
from typing import Any


def job_name(run_dir: Path) -> str:
    return f"fb-{run_dir.name}"


def default_partition() -> str | None:
    """The default partition of this SLURM (pysqa's template needs one named)."""
    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    names = out.split()
    for name in names:
        if name.endswith("*"):
            return name[:-1]
    return names[0] if names else None


def with_job_name(rd: dict[str, Any], run_dir: Path, uid: str, attempt: int, cached: bool) -> dict[str, Any]:
    """Each job is named after its task (the name is not part of executorlib's cache key).

    The files a job reads and writes are executorlib's cache: without a ``cache_directory``
    of the user's, each attempt gets a key of its own, so two equal calls both run.
    """
    out = {**rd, "job_name": f"{job_name(run_dir)}-{uid}"}
    if not cached:
        out.setdefault("cache_key", f"{uid}-{attempt}")
    return out


#: states of a job that ended without its task's result; executorlib notices them only every 30 s
FAILED = {"CANCELLED", "FAILED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED", "BOOT_FAIL", "DEADLINE"}
POLL = 2.0


def ended_jobs(run_dir: Path) -> dict[str, tuple[str, str]]:
    """``{task uid: (job id, state)}`` for this run's jobs that ended without a result."""
    prefix = job_name(run_dir) + "-"
    try:
        out = subprocess.run(
            ["squeue", "-h", "-t", "all", "-o", "%j|%i|%T"], capture_output=True, text=True, timeout=20
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    found = {}
    for line in out.splitlines():
        name, _, rest = line.partition("|")
        job, _, state = rest.partition("|")
        if name.startswith(prefix) and state.strip() in FAILED:
            found[name[len(prefix):]] = (job, state.strip())
    return found


def cluster_executor(run_dir: Path, cache_directory: str | None, options: dict[str, Any]) -> Any:
    import executorlib

    defaults = dict(options.get("resource_dict") or {})
    if "partition" not in defaults:
        partition = default_partition()
        if partition is not None:
            defaults["partition"] = partition
    with warnings.catch_warnings():  # executorlib warns that it cannot validate pysqa's keys (partition)
        warnings.simplefilter("ignore", UserWarning)
        return executorlib.SlurmClusterExecutor(
            max_workers=options.get("max_workers"),
            max_cores=options.get("max_cores"),
            cache_directory=cache_directory or str(run_dir / "jobs"),
            resource_dict=defaults,
            pysqa_config_directory=options.get("pysqa_config_directory"),
            pmi_mode=options.get("pmi_mode"),
        )


def cancel_jobs_under(run_dir: Path) -> None:
    """scancel every job of this run that is still queued or running."""
    prefix = job_name(run_dir) + "-"
    try:
        out = subprocess.run(["squeue", "-h", "-o", "%j|%i"], capture_output=True, text=True, timeout=20).stdout
        ids = [rest for name, _, rest in (line.partition("|") for line in out.splitlines()) if name.startswith(prefix)]
        if ids:
            subprocess.run(["scancel", *ids], capture_output=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        pass
