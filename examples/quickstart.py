"""flowbridge quick start: a small workflow on the embedded default backend (local threads).

    python examples/quickstart.py

Swap the stack with no edit: FLOWBRIDGE_PROFILE=<name> picks a profile from
flowbridge.toml (see docs/backends.md), or pass backend="dask" / "parsl" / "radical".
"""

import asyncio

from flowbridge import DependencyFailed, WorkflowEngine


async def main() -> None:
    async with WorkflowEngine() as flow:  # no backend given: local threads

        @flow.function_task
        def square(x: int) -> int:
            return x * x

        @flow.function_task
        async def total(values: list[int]) -> int:  # async bodies work too
            await asyncio.sleep(0.01)
            return sum(values)

        @flow.executable_task
        def report(value: int) -> list[str]:  # runs after `value` is known
            return ["echo", f"sum of squares = {value}"]

        @flow.function_task
        def explode() -> None:
            raise ValueError("this step fails on purpose")

        @flow.block
        async def pipeline(n: int) -> str:
            squares = [square(i) for i in range(n)]  # futures, all running at once
            line = await report(total(squares))  # futures as arguments are dependencies
            return line.strip()

        print(await pipeline(10))

        try:
            await square(explode())
        except DependencyFailed as err:
            print(f"failed as expected: {err}")


if __name__ == "__main__":
    asyncio.run(main())
