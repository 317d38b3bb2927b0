"""flowbridge on Dask, side by side with Dask's own asynchronous Client on the same cluster.

    python benchmarks/bench_dask.py                    # full sizes, best of 3
    python benchmarks/bench_dask.py --quick --repeat 1 # smoke run
    python benchmarks/bench_dask.py --check            # exit 1 when a target is missed

One LocalCluster (2 worker processes x 1 thread, 127.0.0.1, no dashboard), built by
``DaskExecutionBackend(n_workers=2, threads_per_worker=1)``, serves both contenders,
interleaved by :func:`harness.best_of`:

* ``dask native``: ``await Client(cluster, asynchronous=True)``; ``client.submit(fn, ...,
  pure=False)`` for every task, dependencies as Dask futures, ``await client.gather(...)``.
* ``flowbridge``: a ``WorkflowEngine`` on that backend (its own asynchronous client on the same
  loop); plain ``def`` no-op bodies, everything submitted at once, dependencies as task
  futures (handed to Dask as Dask futures), values awaited.

Targets (issue #3): 2,000 tasks at once <= 1.15x native; a chain of 200 <= 1.25x native.
"""

from __future__ import annotations

import asyncio
from typing import Any

from harness import Case, best_of, report, run

NATIVE, FB = "dask native", "flowbridge"


def noop(x: Any = None) -> Any:
    return x


def inc(x: int) -> int:
    return x + 1


async def main(args: Any) -> int:
    from distributed import Client

    from flowbridge import DaskExecutionBackend, WorkflowEngine

    fanout, chain = (200, 20) if args.quick else (2000, 200)
    # flowbridge builds (and at the end closes) the cluster; the native client joins the same one.
    backend = DaskExecutionBackend(n_workers=2, threads_per_worker=1)
    flow = await WorkflowEngine.create(backend=backend)
    client = await Client(backend.cluster, asynchronous=True)
    fb_noop, fb_inc = flow.function_task(noop), flow.function_task(inc)
    try:

        async def native_fanout() -> None:
            futures = [client.submit(noop, i, pure=False) for i in range(fanout)]
            assert await client.gather(futures) == list(range(fanout))

        async def fb_fanout() -> None:
            assert await asyncio.gather(*(fb_noop(i) for i in range(fanout))) == list(range(fanout))

        async def native_chain() -> None:
            future = client.submit(inc, 0, pure=False)
            for _ in range(chain - 1):
                future = client.submit(inc, future, pure=False)
            assert await future == chain

        async def fb_chain() -> None:
            value = fb_inc(0)
            for _ in range(chain - 1):
                value = fb_inc(value)
            assert await value == chain

        await native_fanout()  # warm both paths (imports, worker caches) before timing
        await fb_fanout()
        cases = [
            Case(f"{fanout:,} no-op tasks at once", NATIVE, FB, 1.15),
            Case(f"chain of {chain} dependent tasks", NATIVE, FB, 1.25),
        ]
        cases[0].seconds = await best_of({NATIVE: native_fanout, FB: fb_fanout}, args.repeat)
        cases[1].seconds = await best_of({NATIVE: native_chain, FB: fb_chain}, args.repeat)
    finally:
        await client.close()
        await flow.shutdown()
    return report("flowbridge on Dask vs the native asynchronous Client (2 workers x 1 thread)", cases, args)


if __name__ == "__main__":
    run(main, "flowbridge DaskExecutionBackend vs the native Dask asynchronous Client")
