"""flowbridge on executorlib, one node: a block-allocated pool for plain tasks, one process per task
for tasks that ask for resources, and results cached across runs.

    pip install "flowbridge[executorlib]"
    python examples/executorlib_local.py

The workers are executorlib's; flowbridge tags them with its run directory, so they die
with the program even when it is killed. Dependencies are released by flowbridge as soon as
an upstream task finishes (no polling).
"""

import asyncio
import os
import tempfile

from flowbridge import ExecutorlibExecutionBackend, Resources, WorkflowEngine


def square(x: int) -> int:
    return x * x


def total(*values: int) -> int:
    return sum(values)


def cwd() -> str:
    return os.getcwd()


async def main() -> None:
    with tempfile.TemporaryDirectory() as scratch:
        backend = ExecutorlibExecutionBackend(max_workers=2, cache_directory=os.path.join(scratch, "cache"))
        async with WorkflowEngine(backend=backend) as flow:
            sq, tot = flow.function_task(square), flow.function_task(total)
            print("sum of squares =", await tot(*[sq(i) for i in range(10)]))
            own = flow.function_task(resources=Resources(threads=2, extra={"cwd": os.path.join(scratch, "t")}))(cwd)
            print("a task with resources ran in", os.path.relpath(await own(), scratch))

            @flow.executable_task
            def report(value: int) -> list[str]:
                return ["echo", f"a command after total={value}"]

            print((await report(tot(sq(2), sq(3)))).strip())
        print("cached results:", len(os.listdir(os.path.join(scratch, "cache"))))


if __name__ == "__main__":
    asyncio.run(main())
