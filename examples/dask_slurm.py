"""flowbridge on SLURM through dask-jobqueue: Dask workers run inside batch jobs.

    pip install "flowbridge[dask-jobqueue]"
    python examples/dask_slurm.py

flowbridge builds the SLURMCluster, keeps `jobs` worker jobs alive (a job that dies, say by
scancel or walltime, is replaced) and cancels every job at shutdown. Any SLURMCluster option
passes through (queue, account, walltime, job_extra_directives, ...). On a machine without
SLURM the script says so and exits.
"""

import asyncio
import os
import shutil
import subprocess

from flowbridge import DaskExecutionBackend, WorkflowEngine


def where(i: int) -> str:
    return f"task {i} ran in SLURM job {os.environ.get('SLURM_JOB_ID')} on {os.uname().nodename}"


def slurm_reachable() -> bool:
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        return False
    return subprocess.run(["sinfo", "-h"], capture_output=True, timeout=30).returncode == 0


async def main() -> None:
    if not slurm_reachable():
        print("no SLURM reachable here (sbatch/sinfo); nothing to do")
        return
    backend = DaskExecutionBackend(
        jobqueue="slurm",
        jobs=2,
        cores=1,
        memory="1GB",
        walltime="00:10:00",
        # multi-node machines: interface="ib0" (or "eth0") so workers on other nodes reach the
        # scheduler; by default it listens on 127.0.0.1 (single-node).
    )
    async with WorkflowEngine(backend=backend) as flow:
        for line in await asyncio.gather(*(flow.function_task(where)(i) for i in range(4))):
            print(line)


if __name__ == "__main__":
    asyncio.run(main())
