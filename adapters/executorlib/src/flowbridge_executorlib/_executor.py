"""``Executor``: the executorlib paper's interface, on ExecutorlibExecutionBackend, by the paper's backend names.

``from flowbridge_executorlib import Executor`` in place of ``from executorlib import Executor``
runs the paper's examples unchanged: ``Executor(backend="local")`` (one node),
``"slurm_submission"`` (sbatch per call), ``"slurm_allocation"`` (srun inside a job) and
``"flux_allocation"``. ``submit`` takes a per-call ``resource_dict``; futures passed as
arguments become dependencies (released by flowbridge, without polling).
"""

from __future__ import annotations

from typing import Any

from flowbridge._executor import Executor as _FacadeExecutor

from ._backend import ExecutorlibExecutionBackend

#: the paper's backend names -> kinds
BACKENDS = {
    "local": "single_node",
    "slurm_submission": "slurm_cluster",
    "slurm_allocation": "slurm_job",
    "flux_allocation": "flux_job",
    "flux_submission": "flux_cluster",
}


class Executor(_FacadeExecutor):
    """A ``concurrent.futures.Executor`` on executorlib, as the paper writes it."""

    def __init__(self, backend: str = "local", *, cache_directory: str | None = None, **options: Any) -> None:
        kind = BACKENDS.get(backend, backend)
        super().__init__(ExecutorlibExecutionBackend(kind=kind, cache_directory=cache_directory, **options))
