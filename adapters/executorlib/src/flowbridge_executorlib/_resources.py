"""flowbridge Resources as an executorlib ``resource_dict``, per kind, or UnsupportedResource saying why.

executorlib does not check a ``resource_dict`` against what the chosen spawner can do:
a key the spawner does not take (``gpus_per_core`` or ``run_time_max`` on one node)
raises in a background thread and the task's future never resolves. So every request
is checked here, at submit, against the keys each kind really passes on.
"""

from __future__ import annotations

import importlib.util
import math
import shutil
from typing import Any

from flowbridge import Resources
from flowbridge.toolkit.checks import cannot_honour

#: resource_dict keys each kind honours when given through ``Resources(extra={...})``.
EXTRA_KEYS: dict[str, frozenset[str]] = {
    "single_node": frozenset({"cwd", "cache_key", "error_log_file"}),
    "slurm_job": frozenset({"cwd", "cache_key", "error_log_file", "num_nodes", "exclusive", "slurm_cmd_args"}),
    # pysqa's SLURM template reads these; executorlib drops gpus_per_core and slurm_cmd_args for it
    "slurm_cluster": frozenset({"cwd", "cache_key", "partition", "submission_template"}),
    "flux_job": frozenset({"cwd", "cache_key", "error_log_file", "num_nodes", "exclusive", "priority"}),
    "flux_cluster": frozenset({"cwd", "cache_key", "num_nodes", "exclusive", "priority", "submission_template"}),
    "executor": frozenset(
        {
            "cwd",
            "cache_key",
            "cache_directory",
            "error_log_file",
            "num_nodes",
            "exclusive",
            "slurm_cmd_args",
            "priority",
            "submission_template",
            "partition",
        }
    ),
}
#: flowbridge fields each kind honours.
FIELDS: dict[str, frozenset[str]] = {
    "single_node": frozenset({"cores", "threads", "ranks"}),
    "slurm_job": frozenset({"cores", "threads", "ranks", "gpus", "memory", "walltime"}),
    "slurm_cluster": frozenset({"cores", "threads", "ranks", "memory", "walltime"}),
    "flux_job": frozenset({"cores", "threads", "ranks", "gpus"}),
    "flux_cluster": frozenset({"cores", "threads", "ranks", "gpus", "walltime"}),
    "executor": frozenset({"cores", "threads", "ranks", "gpus", "walltime"}),
}
WHY = {
    ("single_node", "walltime"): "executorlib's local spawner has no run_time_max (the task would hang); "
    "use the task's timeout= instead",
    ("single_node", "gpus"): "executorlib's local spawner cannot pin GPUs (gpus_per_core would hang the task); "
    "use kind='slurm_job' or 'flux_job'",
    ("single_node", "memory"): "executorlib has no memory limit on one node",
    ("flux_job", "memory"): "executorlib's flux spawner has no memory limit",
    ("slurm_cluster", "gpus"): "executorlib drops gpus_per_core for sbatch jobs (pysqa's template has no GPU line); "
    "use kind='slurm_job' inside an allocation with GPUs",
    ("flux_job", "walltime"): "use the task's timeout= instead",
}


def _label(kind: str) -> str:
    return "your executor" if kind == "executor" else f"kind={kind!r}"


def resource_dict(res: Resources, kind: str, task: str) -> dict[str, Any]:
    """The ``resource_dict`` of one request (empty when it asks for nothing beyond the defaults)."""
    asked = res.requested()
    out: dict[str, Any] = {}
    for field in asked:
        if field != "extra" and field not in FIELDS[kind]:
            why = WHY.get((kind, field), "executorlib cannot honour it here")
            raise cannot_honour("executorlib", task, f"{field}={asked[field]!r}", f"{why} ({_label(kind)})")
    if res.ranks is not None and res.ranks > 1:
        out["cores"] = res.ranks
        _need_mpi(kind, task, res.ranks)
    cpus = (res.cores or 1) * (res.threads or 1)
    if cpus > 1:
        out["threads_per_core"] = cpus
    if res.gpus:
        out["gpus_per_core"] = res.gpus
    if res.walltime is not None:
        out["run_time_max"] = max(1, math.ceil(res.walltime))
    if res.memory is not None:
        if kind == "slurm_cluster":  # pysqa's template: --mem={{memory_max}}G
            out["memory_max"] = max(1, math.ceil(res.memory / 1024**3))
        else:  # executorlib has no memory key: srun gets it as --mem (per node, in MB)
            out.setdefault("slurm_cmd_args", []).append(f"--mem={max(1, math.ceil(res.memory / 1024**2))}M")
    allowed = EXTRA_KEYS[kind]
    for key, value in res.extra.items():
        if key not in allowed:
            raise cannot_honour(
                "executorlib", task, f"extra {key!r}", f"{_label(kind)} passes on {', '.join(sorted(allowed))}"
            )
        if key == "slurm_cmd_args":
            if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
                raise cannot_honour("executorlib", task, f"extra slurm_cmd_args={value!r}", "it takes a list of str")
            out.setdefault("slurm_cmd_args", []).extend(value)
        else:
            out[key] = value
    return out


def installed(module: str) -> bool:
    """Whether ``module`` can be imported here (without importing it)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # ValueError: blocked with sys.modules[module] = None
        return False


def _need_mpi(kind: str, task: str, ranks: int) -> None:
    """ranks > 1 starts the worker under MPI; without mpi4py executorlib's worker never answers."""
    if not installed("mpi4py"):
        raise cannot_honour(
            "executorlib",
            task,
            f"ranks={ranks}",
            "executorlib needs mpi4py for cores > 1 and it is not installed here",
            "pip install mpi4py (it builds against an MPI library, e.g. apt-get install libopenmpi-dev)",
        )
    if kind == "single_node" and shutil.which("mpiexec") is None:
        raise cannot_honour("executorlib", task, f"ranks={ranks}", "no mpiexec on PATH", "apt-get install openmpi-bin")
