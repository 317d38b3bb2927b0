"""flowbridge on executorlib, side by side with executorlib's own SingleNodeExecutor.

    python benchmarks/bench_executorlib.py                    # full sizes, best of 3
    python benchmarks/bench_executorlib.py --quick --repeat 1 # smoke run
    python benchmarks/bench_executorlib.py --check            # exit 1 when a target is missed

Both contenders run on one node with 2 worker processes, interleaved by :func:`harness.best_of`:

* ``executorlib native``: ``SingleNodeExecutor(max_workers=2, block_allocation=True,
  hostname_localhost=True)``; ``exe.submit(fn, ...)`` for every task, dependencies as
  executorlib futures (resolved by executorlib's DependencyTaskScheduler), ``.result()``.
* ``flowbridge``: a ``WorkflowEngine`` on ``ExecutorlibExecutionBackend(max_workers=2)`` (the
  same block-allocated pool, built with tagged workers); plain ``def`` no-op bodies, everything
  submitted at once, dependencies as task futures (released by flowbridge's completion
  callbacks, no polling), values awaited.

Targets (issue #11): 2,000 tasks at once <= 1.2x native; a chain of 200 <= 0.5x native.
"""

from __future__ import annotations

import asyncio
from typing import Any

from harness import Case, best_of, report, run

NATIVE, FB = "executorlib native", "flowbridge"


def noop(x: Any = None) -> Any:
    return x


def inc(x: int) -> int:
    return x + 1


async def main(args: Any) -> int:
    from executorlib import SingleNodeExecutor
    from flowbridge import ExecutorlibExecutionBackend, WorkflowEngine

    fanout, chain = (200, 20) if args.quick else (2000, 200)
    exe = SingleNodeExecutor(max_workers=2, block_allocation=True, hostname_localhost=True)
    flow = await WorkflowEngine.create(backend=ExecutorlibExecutionBackend(max_workers=2))
    fb_noop, fb_inc = flow.function_task(noop), flow.function_task(inc)
    try:

        def native_fanout() -> None:
            futures = [exe.submit(noop, i) for i in range(fanout)]
            assert [f.result() for f in futures] == list(range(fanout))

        async def fb_fanout() -> None:
            assert await asyncio.gather(*(fb_noop(i) for i in range(fanout))) == list(range(fanout))

        def native_chain() -> None:
            future = exe.submit(inc, 0)
            for _ in range(chain - 1):
                future = exe.submit(inc, future)
            assert future.result() == chain

        async def fb_chain() -> None:
            value = fb_inc(0)
            for _ in range(chain - 1):
                value = fb_inc(value)
            assert await value == chain

        native_fanout()  # warm both paths (worker start-up, imports) before timing
        await fb_fanout()
        cases = [
            Case(f"{fanout:,} no-op tasks at once", NATIVE, FB, 1.2),
            Case(f"chain of {chain} dependent tasks", NATIVE, FB, 0.5),
        ]
        cases[0].seconds = await best_of({NATIVE: native_fanout, FB: fb_fanout}, args.repeat)
        cases[1].seconds = await best_of({NATIVE: native_chain, FB: fb_chain}, args.repeat)
        native_rate = chain / cases[1].seconds[NATIVE]
        cases[1].note = f"native {native_rate:.0f} links/s, flowbridge {chain / cases[1].seconds[FB]:.0f} links/s"
    finally:
        await flow.shutdown()
        exe.shutdown(wait=True)
    title = "flowbridge on executorlib vs the native SingleNodeExecutor (2 workers, block allocation)"
    return report(title, cases, args)


if __name__ == "__main__":
    run(main, "flowbridge ExecutorlibExecutionBackend vs the native executorlib SingleNodeExecutor")
