"""flowbridge on Parsl: a HighThroughputExecutor on this machine that flowbridge builds and cleans up.

    python examples/parsl_local.py

`ParslExecutionBackend()` owns its DataFlowKernel (never Parsl's global `parsl.load`): a local
HTEX on 127.0.0.1, its run directory under flowbridge's (nothing lands in the working
directory), Parsl's logging off. Dependencies stay inside Parsl: `scaled` below reaches the
DataFlowKernel together with its upstream future, and Parsl starts it when `base` is done.
"""

import asyncio

from flowbridge import ParslExecutionBackend, Resources, WorkflowEngine


def make(n: int) -> list[int]:
    return list(range(n))


def scale(values: list[int], factor: int) -> list[int]:
    return [v * factor for v in values]


def total(parts: list[list[int]]) -> int:
    return sum(sum(p) for p in parts)


async def main() -> None:
    backend = ParslExecutionBackend()  # or ParslExecutionBackend(workers=4)
    async with WorkflowEngine(backend=backend) as flow:
        make_t, scale_t, total_t = flow.function_task(make), flow.function_task(scale), flow.function_task(total)
        base = make_t(1000)
        scaled = [scale_t(base, f) for f in (1, 2, 3)]
        urgent = flow.function_task(resources=Resources(extra={"priority": 0}))(total)  # HTEX priority
        print("total =", await total_t(scaled), "=", await urgent(scaled))

        @flow.executable_task
        def report(value: int) -> str:
            return f'echo "bash-app semantics: stdout is the result ({value}, worker $PARSL_WORKER_RANK)"'

        print((await report(total_t(scaled))).strip())
        print("Parsl run directory:", backend.run_dir, "(removed at shutdown)")
    print("DataFlowKernel cleaned up:", backend.dfk.cleanup_called)


if __name__ == "__main__":
    asyncio.run(main())
