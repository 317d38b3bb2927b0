"""flowbridge on a Parsl DataFlowKernel you built: flowbridge submits to it and never cleans it up.

    python examples/parsl_existing_dfk.py

Your Config decides everything (executors, providers, retries, logging). From an unactivated
virtual environment, point HTEX at this interpreter: its default launch commands look for
`interchange.py` and `process_worker_pool.py` on PATH.
"""

import asyncio
import sys
import tempfile

from parsl.app.python import PythonApp
from parsl.config import Config
from parsl.dataflow.dflow import DataFlowKernel
from parsl.executors import HighThroughputExecutor
from parsl.executors.high_throughput.executor import DEFAULT_LAUNCH_CMD
from parsl.logconfigs.noop import NoopLogging
from parsl.providers import LocalProvider

from flowbridge import ParslExecutionBackend, WorkflowEngine


def square(x: int) -> int:
    return x * x


def my_config(run_dir: str) -> Config:
    htex = HighThroughputExecutor(
        label="htex",
        address="127.0.0.1",
        provider=LocalProvider(init_blocks=1, max_blocks=1),
        interchange_launch_cmd=[sys.executable, "-m", "parsl.executors.high_throughput.interchange"],
        launch_cmd=f"{sys.executable} -m "
        + DEFAULT_LAUNCH_CMD.replace("process_worker_pool.py", "parsl.executors.high_throughput.process_worker_pool"),
    )
    return Config(executors=[htex], run_dir=run_dir, initialize_logging=NoopLogging(), strategy_period=0.5)


async def main() -> None:
    with tempfile.TemporaryDirectory() as run_dir:
        dfk = DataFlowKernel(my_config(run_dir))  # yours: not parsl.load's global one
        try:
            async with WorkflowEngine(backend=ParslExecutionBackend(dfk=dfk, executors=["htex"])) as flow:
                sq = flow.function_task(square)
                print("through flowbridge:", await flow.function_task(sum)([sq(i) for i in range(10)]))
            # flowbridge is shut down; the DataFlowKernel is not
            native = PythonApp(square, data_flow_kernel=dfk, executors=["htex"])
            print("native Parsl on the same DataFlowKernel:", await asyncio.wrap_future(native(12)))
        finally:
            dfk.cleanup()


if __name__ == "__main__":
    asyncio.run(main())
