"""flowbridge on a Dask cluster you already run: reuse it by address, leave it running.

    dask scheduler --host 127.0.0.1 --port 8786 --no-dashboard &
    dask worker tcp://127.0.0.1:8786 --nworkers 2 --nthreads 1 &
    DASK_SCHEDULER_ADDRESS=tcp://127.0.0.1:8786 python examples/dask_existing_cluster.py

Without DASK_SCHEDULER_ADDRESS the script starts a small LocalCluster of its own to stand in
for "your cluster". Either way flowbridge closes only the client it opened.
"""

import asyncio
import os

from distributed import Client, LocalCluster

from flowbridge import DaskExecutionBackend, WorkflowEngine


def inc(x: int) -> int:
    return x + 1


async def run_on(address: str) -> None:
    async with WorkflowEngine(backend=DaskExecutionBackend(address=address)) as flow:
        value = flow.function_task(inc)(0)
        for _ in range(9):
            value = flow.function_task(inc)(value)
        print("chain of 10 on", address, "=", await value)
    async with Client(address, asynchronous=True) as client:  # your cluster is still up
        print("still serving:", await client.submit(inc, 41, pure=False))


async def main() -> None:
    address = os.environ.get("DASK_SCHEDULER_ADDRESS")
    if address:
        await run_on(address)
        return
    import tempfile

    with tempfile.TemporaryDirectory(prefix="dask-example-") as scratch:
        quiet = {"dashboard": False, "dashboard_address": "127.0.0.1:0", "local_directory": scratch}
        async with LocalCluster(
            n_workers=1,
            threads_per_worker=1,
            host="127.0.0.1",
            dashboard_address=None,
            local_directory=scratch,
            scheduler_kwargs=quiet,
            asynchronous=True,
        ) as cluster:
            await run_on(cluster.scheduler_address)


if __name__ == "__main__":
    asyncio.run(main())
