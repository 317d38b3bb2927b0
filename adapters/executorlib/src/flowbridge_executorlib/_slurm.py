"""kind="slurm_cluster": executorlib's SlurmClusterExecutor (one sbatch per task through pysqa), owned.

Every job flowbridge submits carries the job name ``fb-<run dir name>``, so shutdown and
``kill()`` cancel exactly those (``scancel --name``), never a job of the user's.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

_names: dict[str, str] = {}


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


def with_partition(rd: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    return rd  # the executor's default resource_dict carries partition and job name


def cluster_executor(run_dir: Path, cache_directory: str | None, options: dict[str, Any]) -> Any:
    import executorlib

    defaults = dict(options.get("resource_dict") or {})
    defaults.setdefault("job_name", job_name(run_dir))
    if "partition" not in defaults:
        partition = default_partition()
        if partition is not None:
            defaults["partition"] = partition
    return executorlib.SlurmClusterExecutor(
        max_workers=options.get("max_workers"),
        max_cores=options.get("max_cores"),
        cache_directory=cache_directory or str(run_dir / "jobs"),
        resource_dict=defaults,
        pysqa_config_directory=options.get("pysqa_config_directory"),
        pmi_mode=options.get("pmi_mode"),
        hostname_localhost=True,
    )


def cancel_jobs_under(run_dir: Path) -> None:
    try:
        subprocess.run(["scancel", f"--name={job_name(run_dir)}"], capture_output=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        pass
