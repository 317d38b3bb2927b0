"""flowbridge on SLURM through Parsl: an HTEX whose worker pools run inside batch jobs.

    pip install "flowbridge[parsl]"
    python examples/parsl_slurm.py

The same options make a profile (flowbridge.toml):

    [profiles.slurm]
    backend = "parsl"
    provider = "slurm"
    partition = "debug"
    cores_per_node = 1
    walltime = "00:10:00"

flowbridge builds the SlurmProvider (exclusive=False unless asked: a block does not take a
whole node), submits the first job at once, and at shutdown cancels it and waits until it has
left the queue. On a machine without SLURM the script says so and exits.
"""

import asyncio
import os
import shutil
import subprocess

from flowbridge import ParslExecutionBackend, WorkflowEngine


def where(i: int) -> str:
    return f"task {i} ran in SLURM job {os.environ.get('SLURM_JOB_ID')} on {os.uname().nodename}"


def slurm_reachable() -> bool:
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        return False
    return subprocess.run(["sinfo", "-h"], capture_output=True, timeout=30).returncode == 0


def partition() -> str:
    """The default partition (marked with *), else the first one."""
    names = subprocess.run(["sinfo", "-h", "-o", "%P"], capture_output=True, text=True, timeout=30).stdout.split()
    return next((n.rstrip("*") for n in names if n.endswith("*")), names[0] if names else "debug")


async def main() -> None:
    if not slurm_reachable():
        print("no SLURM reachable here (sbatch/sinfo); nothing to do")
        return
    backend = ParslExecutionBackend(
        provider="slurm",
        partition=partition(),
        nodes_per_block=1,
        cores_per_node=2,  # two workers in the job
        walltime="00:10:00",
        launcher="srun",
        # multi-node machines: address="<this host's address on the compute network>", so worker
        # pools on other nodes reach the interchange; by default it listens on 127.0.0.1.
    )
    async with WorkflowEngine(backend=backend) as flow:
        for line in await asyncio.gather(*(flow.function_task(where)(i) for i in range(4))):
            print(line)


if __name__ == "__main__":
    asyncio.run(main())
