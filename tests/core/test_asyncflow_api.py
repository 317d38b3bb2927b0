"""RADICAL-AsyncFlow's documented usage (its README and docs/), with only the import line changed.

Each test is a usage from those pages, written as asyncflow users write it, run on local
threads; what flowbridge does differently on purpose is in docs/asyncflow.md.
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from flowbridge import (
    DependencyFailureError,
    LocalExecutionBackend,
    NoopExecutionBackend,
    Resources,
    TaskFailed,
    UnsupportedResource,
    WorkflowEngine,
)
from flowbridge.adapter import TaskSpec

pytestmark = pytest.mark.timeout(60)


class Recording(NoopExecutionBackend):
    """The no-op backend, keeping every TaskSpec it is handed (in order): what the engine decided."""

    capabilities = frozenset({"functions", "executables", "prompts"})

    def __init__(self, name: str | None = None) -> None:
        super().__init__(name)
        self.specs: list[TaskSpec] = []

    def submit(self, task: TaskSpec) -> Any:
        self.specs.append(task)
        return super().submit(task)


# -- several backends, by name (multi_backend.md) ------------------------------------------


async def test_backends_as_a_list_route_by_name() -> None:
    compute_backend = await LocalExecutionBackend(ThreadPoolExecutor(), name="compute")
    ai_backend = NoopExecutionBackend(name="ai")
    flow = await WorkflowEngine.create(backend=[compute_backend, ai_backend])
    assert flow.backend is compute_backend

    @flow.function_task(backend="compute")
    async def preprocess(raw_text: str) -> str:
        return raw_text.strip().lower()

    @flow.prompt_task(backend="ai")
    async def summarize(preprocessed: str) -> str:
        return f"Summarize this:\n\n{preprocessed}"

    @flow.function_task(backend="compute")
    async def postprocess(summary: str) -> str:
        return f"[Result] {summary}"

    @flow.function_task  # no backend=: the first one
    def where() -> int:
        import threading

        return threading.get_ident()

    assert await preprocess("  Some TEXT ") == "some text"
    assert await postprocess(summarize(preprocess(" doc "))) == "[Result] Dummy Prompt Output"
    assert isinstance(await where(), int)
    await flow.shutdown()


async def test_two_backends_with_one_name_are_refused_naming_the_fix() -> None:
    with pytest.raises(ValueError, match=r"two backends are named 'noop'.*name="):
        WorkflowEngine(backend=[NoopExecutionBackend(), NoopExecutionBackend()])
    with pytest.raises(TypeError, match="name must be a non-empty str"):
        LocalExecutionBackend(name="")


async def test_a_prompt_task_without_an_inference_backend_says_what_would_run_it() -> None:
    async with WorkflowEngine() as flow:
        with pytest.raises(NotImplementedError, match=r"does not answer prompt tasks \(ask\).*'prompts' capability"):

            @flow.prompt_task
            async def ask() -> str:
                return "hello?"


async def test_a_prompt_must_be_a_non_empty_str() -> None:
    flow = await WorkflowEngine.create(dry_run=True)

    @flow.prompt_task
    async def empty() -> str:
        return ""

    with pytest.raises(ValueError, match="must return a non-empty prompt str"):
        await empty()
    await flow.shutdown()


# -- dry run (async_workflows.md, exec_backends.md) ----------------------------------------


async def test_dry_run_walks_the_graph_without_running_a_body(tmp_path: Path) -> None:
    asyncflow = await WorkflowEngine.create(dry_run=True)
    marker = tmp_path / "ran"
    order: list[str] = []

    @asyncflow.function_task
    async def task_a() -> None:
        marker.write_text("a")

    @asyncflow.function_task
    async def task_b() -> None:
        marker.write_text("b")

    @asyncflow.function_task
    async def task_c(task_a_fut: Any, task_b_fut: Any) -> None:
        marker.write_text("c")

    @asyncflow.executable_task
    async def command(value: str) -> str:
        order.append(value)  # the body runs on the driver: it only builds the command
        return f"touch {marker}"

    @asyncflow.block
    async def block() -> Any:
        order.append("block")  # blocks are driver code too
        return await command(task_c(task_a(), task_b()))

    assert await block() == "Dummy Output"
    assert order == ["block", "Dummy Output"]
    assert not marker.exists()
    assert isinstance(asyncflow.backend, NoopExecutionBackend)
    await asyncflow.shutdown()


async def test_dry_run_replaces_the_backends_it_is_given_and_starts_none() -> None:
    pool = LocalExecutionBackend(name="compute")  # never started: dry_run=True runs nothing
    flow = await WorkflowEngine.create(backend=[pool, NoopExecutionBackend(name="ai")], dry_run=True)
    assert list(flow.backends) == ["compute", "ai"]
    assert all(isinstance(b, NoopExecutionBackend) for b in flow.backends.values())

    @flow.function_task(backend="compute")
    def body() -> str:
        raise AssertionError("ran")

    assert await body() == "Dummy Output"
    await flow.shutdown()
    assert "_fb_starting" not in pool.__dict__


# -- keep a backend across engines (best_practice.md) ---------------------------------------


async def test_skip_execution_backend_leaves_it_up_for_the_next_engine() -> None:
    first = await WorkflowEngine.create()  # the pool is flowbridge's own
    backend = first.backend

    @first.function_task
    def one() -> int:
        return 1

    assert await one() == 1
    await first.shutdown(skip_execution_backend=True)
    second = await WorkflowEngine.create(backend=backend)

    @second.function_task
    def two() -> int:
        return 2

    assert await two() == 2
    await second.shutdown()
    with pytest.raises(RuntimeError):  # now it is closed
        backend.submit(TaskSpec("t", "t", "function", func=int))


# -- workflow tags (telemetry.md) -------------------------------------------------------------


async def test_workflow_id_tags_and_is_not_an_argument() -> None:
    flow = await WorkflowEngine.create()

    @flow.function_task
    def ingest(source: str, **kwargs: Any) -> dict[str, Any]:
        return {"source": source, "kwargs": kwargs}

    @flow.block
    async def pipeline() -> Any:
        return ingest("inside")

    async with flow.workflow_scope("etl-run-42") as wid:
        raw = ingest("source.csv")
        own = ingest("x", workflow_id="explicit")
    async with flow.workflow_scope() as auto:
        in_auto = ingest("y")
    outside = ingest("z")
    inner = await pipeline()
    assert wid == "etl-run-42" and raw.workflow_id == "etl-run-42"
    assert own.workflow_id == "explicit"
    assert auto.startswith("wf-") and len(auto) == 11 and in_auto.workflow_id == auto
    assert outside.workflow_id is None
    assert inner.workflow_id.startswith("block.")  # a block's tasks carry its uid
    assert await own == {"source": "x", "kwargs": {}}
    await asyncio.gather(raw, in_auto, outside, inner)
    await flow.shutdown()


# -- task_description (composite_workflow.md, exec_backends.md) -----------------------------


async def test_task_description_maps_onto_resources_and_never_reaches_the_body() -> None:
    backend = Recording()
    flow = await WorkflowEngine.create(backend=backend)

    @flow.function_task
    async def mpi_func(task_description: dict[str, Any] = {"ranks": 8, "type": "mpi"}) -> Any:  # noqa: B006
        return task_description  # the function's own default: flowbridge passes nothing

    await mpi_func()
    await mpi_func(task_description={"ranks": 2, "cores_per_rank": 4, "gpus_per_rank": 1, "mem_per_rank": 512})
    await mpi_func(task_description={"named_env": "venv", "timeout": 30})
    first, second, third = (spec.resources for spec in backend.specs)
    assert first == Resources(ranks=8)
    assert second == Resources(ranks=2, cores=4, gpus=1, memory=512 * 2**20)
    assert third == Resources(ranks=8, walltime=30, extra={"named_env": "venv"})  # the call's keys win
    assert all(spec.args == () and spec.kwargs == {} for spec in backend.specs)
    await flow.shutdown()


async def test_a_task_description_field_a_backend_cannot_honour_is_named() -> None:
    async with WorkflowEngine() as flow:

        @flow.executable_task
        async def hello() -> str:
            return "/bin/echo hi"

        with pytest.raises(UnsupportedResource, match=r"cannot honour 'gpu_type' \(extra\) for task hello"):
            hello(task_description={"gpu_type": "a100"})
        with pytest.raises(TypeError, match="task_description must be a dict"):
            hello(task_description="ranks=2")
        assert (await hello()).strip() == "hi"


# -- capture_stdio, uid and work_dir (exec_backends.md) -------------------------------------


async def test_capture_stdio_writes_files_and_returns_the_stdout_path(tmp_path: Path) -> None:
    flow = await WorkflowEngine.create(uid="my-run", work_dir=tmp_path)

    @flow.executable_task(capture_stdio=True)
    async def simulate() -> str:
        return "/bin/bash -c 'echo out; echo err >&2'"

    @flow.executable_task(capture_stdio=True)
    async def argv() -> list[str]:
        return ["/bin/echo", "two words"]

    @flow.executable_task(capture_stdio=True)
    async def broken() -> str:
        return "echo why >&2; exit 3"

    @flow.executable_task
    async def plain() -> str:
        return "echo as before"

    stdout_path = await simulate()
    assert stdout_path == str(tmp_path / "my-run" / f"{simulate_uid(stdout_path)}.stdout")
    assert Path(stdout_path).read_text() == "out\n"
    assert Path(stdout_path).with_suffix(".stderr").read_text() == "err\n"
    assert Path(await argv()).read_text() == "two words\n"
    with pytest.raises(TaskFailed) as info:
        await broken()
    assert info.value.exit_code == 3 and "why" in info.value.stderr and str(tmp_path / "my-run") in str(info.value)
    assert await plain() == "as before\n"
    await flow.shutdown()
    assert Path(stdout_path).exists()  # the user's output outlives the engine


def simulate_uid(path: str) -> str:
    return os.path.basename(path).rsplit(".", 1)[0]


async def test_engine_uid_defaults_and_capture_stays_out_of_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FLOWBRIDGE_RUN_DIR", str(tmp_path / "runs"))
    flow = await WorkflowEngine.create()
    assert flow.uid.startswith("flowbridge.")

    @flow.executable_task(capture_stdio=True)
    async def hi() -> str:
        return "echo hi"

    assert Path(await hi()).parent == tmp_path / "runs" / flow.uid
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs"]
    await flow.shutdown()


# -- errors (best_practice.md) ----------------------------------------------------------------


async def test_dependency_failure_lists_every_failed_dependency() -> None:
    flow = await WorkflowEngine.create()

    @flow.function_task
    async def fails(n: int) -> None:
        raise ValueError(f"bad input {n}")

    @flow.function_task
    async def combine(*parts: Any) -> Any:
        return parts

    first, second = fails(1), fails(2)
    await asyncio.wait([first, second])
    with pytest.raises(DependencyFailureError) as info:
        await combine(first, second)
    error = info.value
    assert error.failed_dependencies == ["fails", "fails"]
    assert isinstance(error.root_cause, ValueError) and error.root_cause is error.__cause__
    await flow.shutdown()


async def test_an_executable_that_returns_no_command_is_a_type_and_a_value_error() -> None:
    flow = await WorkflowEngine.create()

    @flow.executable_task
    async def nothing() -> None:
        return None

    for caught in (ValueError, TypeError):
        with pytest.raises(caught, match="must return a command"):
            await nothing()
    await flow.shutdown()


# -- call order (async_workflows.md) ----------------------------------------------------------


async def test_tasks_ready_together_are_handed_over_in_call_order() -> None:
    backend = Recording()
    flow = await WorkflowEngine.create(backend=backend)

    @flow.executable_task
    async def make_file() -> str:
        return "echo first"

    @flow.function_task
    async def read_file() -> None:
        return None

    @flow.executable_task
    async def waits_first(delay: float) -> str:
        await asyncio.sleep(delay)  # a body that waits finishes on its own task, later
        return "echo late"

    late = waits_first(0.05)
    calls = [make_file(), read_file(), make_file(), read_file()]
    await asyncio.gather(*calls, late)
    assert [spec.name for spec in backend.specs] == ["make_file", "read_file", "make_file", "read_file", "waits_first"]
    await flow.shutdown()


async def test_a_waiting_executable_body_is_cancelled_where_it_waits() -> None:
    flow = await WorkflowEngine.create()
    seen: list[str] = []

    @flow.executable_task
    async def slow() -> str:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        return "echo never"

    task = slow()
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0)
    assert seen == ["cancelled"]
    await flow.shutdown()


async def test_a_body_that_waits_runs_on_a_task_of_its_own() -> None:
    flow = await WorkflowEngine.create()
    seen: list[Any] = []

    @flow.executable_task
    async def guarded() -> str:
        seen.append(asyncio.current_task())
        async with asyncio.timeout(5):  # bound to the body's own task, never to its caller's
            await asyncio.sleep(0)
        return "echo ok"

    assert await guarded() == "ok\n"
    assert seen[0] is not None and seen[0] is not asyncio.current_task()
    await flow.shutdown()
