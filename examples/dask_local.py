"""flowbridge on Dask: a LocalCluster that flowbridge builds, uses and closes.

    python examples/dask_local.py

Values stay on the Dask workers until awaited: `scaled` below is handed to `total` as a Dask
future, so the arrays never pass through this process. Dask's worker processes are started
with multiprocessing "spawn": keep the `if __name__ == "__main__":` guard.
"""

import asyncio

from flowbridge import DaskExecutionBackend, Resources, WorkflowEngine


def make(n: int) -> list[int]:
    return list(range(n))


def scale(values: list[int], factor: int) -> list[int]:
    return [v * factor for v in values]


def total(*parts: list[int]) -> int:
    return sum(sum(p) for p in parts)


async def main() -> None:
    backend = DaskExecutionBackend(n_workers=2, threads_per_worker=1)  # 127.0.0.1, no dashboard
    async with WorkflowEngine(backend=backend) as flow:
        make_t, scale_t, total_t = flow.function_task(make), flow.function_task(scale), flow.function_task(total)
        base = make_t(1000)
        scaled = [scale_t(base, f) for f in (1, 2, 3)]  # Dask resolves `base` on the cluster
        one_core = flow.function_task(resources=Resources(cores=1))(total)  # Dask resource CPU=1
        print("total =", await total_t(*scaled), "=", await one_core(*scaled))

        @flow.executable_task
        def hostname(value: int) -> list[str]:
            return ["echo", f"ran on a Dask worker after total={value}"]

        print((await hostname(total_t(*scaled))).strip())
    print("the LocalCluster is closed:", backend.cluster.status.name)


if __name__ == "__main__":
    asyncio.run(main())
