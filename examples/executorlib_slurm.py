"""flowbridge on executorlib with SLURM: srun inside an allocation (`slurm_job`) or one sbatch job
per task (`slurm_cluster`).

    pip install "flowbridge[executorlib]"
    sbatch -n 4 --wrap "python examples/executorlib_slurm.py"   # slurm_job inside the allocation
    python examples/executorlib_slurm.py                         # from a login node

Inside an allocation (SLURM_JOB_ID set) the workers are srun steps of it; elsewhere every task
is its own sbatch job (partition: the cluster's default). A task's Resources reach srun/sbatch:
cores -> --cpus-per-task, ranks -> -n, memory -> --mem, walltime -> --time. Every job flowbridge
submitted is cancelled at shutdown. On a machine without SLURM the script says so and exits.
"""

import asyncio
import os
import shutil
import subprocess

from flowbridge import ExecutorlibExecutionBackend, Resources, WorkflowEngine


def where(i: int) -> str:
    cpus = os.environ.get("SLURM_CPUS_PER_TASK", "1")
    return f"task {i} ran in SLURM job {os.environ.get('SLURM_JOB_ID')} with {cpus} CPU(s)"


def slurm_reachable() -> bool:
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        return False
    return subprocess.run(["sinfo", "-h"], capture_output=True, timeout=30).returncode == 0


async def main() -> None:
    if not slurm_reachable():
        print("SLURM is not reachable here (no sbatch/sinfo, or no controller): nothing to run")
        return
    kind = "slurm_job" if os.environ.get("SLURM_JOB_ID") else "slurm_cluster"
    async with WorkflowEngine(backend=ExecutorlibExecutionBackend(kind=kind)) as flow:
        print(await flow.function_task(where)(1))
        print(await flow.function_task(resources=Resources(cores=2, walltime="00:05:00"))(where)(2))


if __name__ == "__main__":
    asyncio.run(main())
