"""The Parsl adapter on a real HighThroughputExecutor: one user DataFlowKernel for this module.

Each test makes its own adapter on the shared DataFlowKernel (``dfk=``), which also
proves that the adapter never cleans up a DataFlowKernel it did not build.
"""

from __future__ import annotations

import asyncio
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from parsl_helpers import LABEL

from flowbridge import (
    DependencyFailed,
    ParslExecutionBackend,
    Resources,
    TaskFailed,
    TaskTimeout,
    UnsupportedResource,
    WorkerLost,
    WorkflowEngine,
)
from flowbridge.testing import ConformanceSuite, suite

QUICK = 60.0


class TestConformance(ConformanceSuite):
    cancel_running = False  # HTEX cannot stop a task a worker has started

    @pytest.fixture
    def backend(self, user_dfk: Any) -> Any:
        return ParslExecutionBackend(dfk=user_dfk)


@pytest.fixture
async def flow(user_dfk: Any) -> Any:
    engine = await WorkflowEngine.create(backend=ParslExecutionBackend(dfk=user_dfk, executors=[LABEL]))
    yield engine
    await asyncio.wait_for(engine.shutdown(cancel=True), QUICK)


# -- defined in this test module: importable only through pytest's sys.path change ----------


@dataclass
class Point:
    x: int
    y: int


def norm1(p: Point) -> int:
    return abs(p.x) + abs(p.y)


def where() -> dict[str, str | None]:
    return {k: os.environ.get(k) for k in ("PARSL_WORKER_RANK", "PARSL_WORKER_POOL_ID")} | {"pid": str(os.getpid())}


def keywords(**kwargs: Any) -> dict[str, Any]:
    return kwargs


def spin(seconds: float) -> str:
    import time

    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass
    return "finished"


def describe(value: str, extra: dict[str, list[str]]) -> str:
    return f"{value} {extra['again'][0]}"


def die_once(counter: str) -> int:
    """Kills its own worker process on the first attempt."""
    path = Path(counter)
    attempt = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(attempt))
    if attempt == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return attempt


# -- the reuse of a user's DataFlowKernel ---------------------------------------------------


async def test_runs_on_parsl_workers_and_dfk_survives_shutdown(user_dfk: Any) -> None:
    from parsl.app.python import PythonApp

    engine = await WorkflowEngine.create(backend=ParslExecutionBackend(dfk=user_dfk, executors=[LABEL]))
    info = await asyncio.wait_for(engine.function_task(where)(), QUICK)
    assert info["PARSL_WORKER_RANK"] is not None and info["pid"] != str(os.getpid())
    await engine.shutdown()
    assert not user_dfk.cleanup_called
    native = PythonApp(suite.add, data_flow_kernel=user_dfk, executors=[LABEL])(1, 2)
    assert await asyncio.wrap_future(native) == 3


async def test_module_functions_and_classes_travel_by_value(flow: WorkflowEngine) -> None:
    assert await asyncio.wait_for(flow.function_task(norm1)(Point(3, -4)), QUICK) == 7


async def test_dependencies_are_native(flow: WorkflowEngine, user_dfk: Any) -> None:
    """The dependent reaches the DataFlowKernel while its upstream still runs: Parsl releases it."""
    before = user_dfk.task_count
    slow = flow.function_task(spin)(1.0)
    after = flow.function_task(describe)(slow, extra={"again": [slow]})  # nested, too
    await asyncio.sleep(0.3)
    assert not slow.done()
    assert user_dfk.task_count - before == 2
    assert await asyncio.wait_for(after, QUICK) == "finished finished"


async def test_executable_is_bash_app(flow: WorkflowEngine, tmp_path: Path) -> None:
    @flow.executable_task
    def rank() -> str:
        return 'echo "rank=$PARSL_WORKER_RANK"'

    @flow.executable_task
    def fails(_: str) -> list[str]:
        return ["sh", "-c", "echo broken >&2; exit 7"]

    out = await asyncio.wait_for(rank(), QUICK)
    assert out.startswith("rank=") and out.strip() != "rank="
    bad = fails(out)
    child = flow.function_task(norm1)(bad)
    with pytest.raises(DependencyFailed) as info:
        await asyncio.wait_for(child, QUICK)
    assert isinstance(info.value.root, TaskFailed)
    assert info.value.root.exit_code == 7 and "broken" in info.value.root.stderr
    assert bad.uid in str(info.value)


async def test_lost_worker_is_worker_lost_and_retried(flow: WorkflowEngine, tmp_path: Path) -> None:
    with pytest.raises(WorkerLost, match="lost its Parsl worker"):
        await asyncio.wait_for(flow.function_task(die_once)(str(tmp_path / "a")), QUICK)
    retried = flow.function_task(retries=1)(die_once)(str(tmp_path / "b"))
    assert await asyncio.wait_for(retried, QUICK) == 2


# -- resources ------------------------------------------------------------------------------


async def test_resources_map_to_parsl(flow: WorkflowEngine) -> None:
    with pytest.raises(UnsupportedResource, match=r"'parsl'.*cores"):
        flow.function_task(resources=Resources(cores=2))(keywords)
    with pytest.raises(UnsupportedResource, match="threads"):
        flow.function_task(resources=Resources(threads=2))(keywords)
    with pytest.raises(UnsupportedResource, match="no_such_key"):
        flow.function_task(resources=Resources(extra={"no_such_key": 1}))(keywords)
    # priority is a key HTEX takes; the specification never reaches the function
    prioritised = flow.function_task(resources=Resources(extra={"priority": 1}))(keywords)
    assert await asyncio.wait_for(prioritised(a=1), QUICK) == {"a": 1}


async def test_walltime_stops_the_task(flow: WorkflowEngine) -> None:
    limited = flow.function_task(resources=Resources(walltime=0.5))(spin)
    with pytest.raises(TaskTimeout, match="walltime"):
        await asyncio.wait_for(limited(20.0), QUICK)
    assert await asyncio.wait_for(limited(0.01), QUICK) == "finished"
