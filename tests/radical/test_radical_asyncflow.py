"""RADICAL-AsyncFlow's RP-specific usage, import line changed only, on the shared real pilot."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from flowbridge import NoopExecutionBackend, RadicalExecutionBackend, WorkflowEngine

pytestmark = pytest.mark.timeout(300)
QUICK = 120


@pytest.fixture
def named(shared: Any) -> Any:
    return RadicalExecutionBackend(
        pilot=shared.pilot,
        task_manager=shared.task_manager,
        raptor=shared.raptor,
        worker_cores=shared.worker_cores,
        name="hpc",
    )


async def test_task_description_reaches_the_task_description_and_routes_by_name(named: Any) -> None:
    flow = await asyncio.wait_for(WorkflowEngine.create(backend=[named, NoopExecutionBackend(name="ai")]), QUICK)
    try:
        assert flow.backend is named and list(flow.backends) == ["hpc", "ai"]

        @flow.executable_task(backend="hpc")
        async def hello(task_description: dict[str, Any] = {"environment": {"FB_FROM": "signature"}}) -> str:  # noqa: B006
            return "echo $FB_FROM $RP_RANKS"

        @flow.function_task
        async def plus(x: int) -> int:
            return x + 1

        assert (await asyncio.wait_for(hello(), QUICK)).split() == ["signature", "1"]
        call = hello(task_description={"environment": {"FB_FROM": "call"}, "ranks": 1})
        assert (await asyncio.wait_for(call, QUICK)).split() == ["call", "1"]
        assert await asyncio.wait_for(plus(plus(1), workflow_id="wf"), QUICK) == 3
    finally:
        await asyncio.wait_for(flow.shutdown(), QUICK)
