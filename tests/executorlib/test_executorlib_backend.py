"""ExecutorlibExecutionBackend on one node: options, resources, hang guards, cache, reuse, cleanup."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from flowbridge import (
    BackendUnavailable,
    ExecutorlibExecutionBackend,
    Resources,
    UnsupportedResource,
    WorkerLost,
    WorkflowEngine,
)
from stop_helpers import leftovers

BOUND = 10.0  # a guarded case must surface within this many seconds


def add(a: int, b: int) -> int:
    return a + b


def where() -> tuple[int, str]:
    return os.getpid(), os.getcwd()


def die() -> None:
    os.kill(os.getpid(), 9)


def counted(path: str, x: int) -> int:
    """Counts its runs in a file, so a test can tell a cached result from a fresh one."""
    with open(path, "a") as fh:
        fh.write("ran\n")
    return x * 10


# -- construction --------------------------------------------------------------------------


def test_registry_name_and_star_import() -> None:
    engine = WorkflowEngine(backend="executorlib")
    try:
        assert isinstance(engine.backends["default"], ExecutorlibExecutionBackend)
    finally:
        engine.close()
    out = subprocess.run(
        [sys.executable, "-c", "from flowbridge import *; print(ExecutorlibExecutionBackend.name)"],
        capture_output=True, text=True, timeout=100,  # imports every adapter's framework: slow on a busy machine
    )
    assert out.returncode == 0 and out.stdout.strip() == "executorlib", out.stderr


def test_bad_options_fail_fast_with_the_fix() -> None:
    with pytest.raises(ValueError, match="single_node, slurm_cluster, slurm_job, flux_job, flux_cluster"):
        ExecutorlibExecutionBackend(kind="laptop")
    with pytest.raises(TypeError, match="unknown option.*n_workers.*max_workers"):
        ExecutorlibExecutionBackend(n_workers=2)
    with pytest.raises(TypeError, match="already made"):
        ExecutorlibExecutionBackend(object.__new__(type("E", (), {"submit": lambda self: None})), kind="slurm_job")


@pytest.mark.parametrize("kind", ["flux_job", "flux_cluster"])
def test_flux_without_flux_is_unavailable(kind: str) -> None:
    with pytest.raises(BackendUnavailable, match=r"needs Flux \(flux-core"):
        ExecutorlibExecutionBackend(kind=kind)


def test_cache_without_h5py_is_unavailable(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['h5py'] = None\n"
        "from flowbridge import ExecutorlibExecutionBackend, BackendUnavailable\n"
        "try:\n    ExecutorlibExecutionBackend(cache_directory='c')\n"
        "except BackendUnavailable as exc:\n    print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert 'needs h5py' in out.stdout and 'flowbridge[executorlib]' in out.stdout, out.stdout + out.stderr
    assert list(tmp_path.iterdir()) == []


# -- resources and the cases where executorlib itself would never resolve ------------------------


@pytest.fixture
async def flow():
    engine = await WorkflowEngine.create(backend=ExecutorlibExecutionBackend(max_workers=2))
    yield engine
    await asyncio.wait_for(engine.shutdown(cancel=True), 30)


@pytest.mark.parametrize(
    ("resources", "says"),
    [
        (Resources(ranks=2), "mpi4py"),
        (Resources(walltime=5), "timeout="),
        (Resources(gpus=1), "slurm_job"),
        (Resources(memory="1GB"), "memory"),
        (Resources(extra={"num_nodes": 2}), "cache_key, cwd, error_log_file"),
    ],
    ids=["ranks-without-mpi4py", "walltime", "gpus", "memory", "extra"],
)
async def test_what_one_node_cannot_honour_is_refused_at_once(flow, resources: Resources, says: str) -> None:
    if resources.ranks and __import__("importlib.util").util.find_spec("mpi4py") is not None:
        pytest.skip("mpi4py is installed here: ranks > 1 can run")
    start = time.monotonic()
    with pytest.raises(UnsupportedResource, match="'executorlib'") as info:
        await asyncio.wait_for(flow.function_task(resources=resources)(add)(1, 1), 60)
    seconds = time.monotonic() - start
    assert says in str(info.value)
    assert seconds <= BOUND, f"took {seconds:.1f} s"


async def test_a_task_with_resources_gets_its_own_process_and_directory(flow, tmp_path: Path) -> None:
    pool_pid, _ = await flow.function_task(where)()
    here = tmp_path / "task-cwd"
    pid, cwd = await asyncio.wait_for(
        flow.function_task(resources=Resources(threads=2, extra={"cwd": str(here)}))(where)(), 60
    )
    assert cwd == str(here) and pid != pool_pid  # block allocation would have ignored the cwd
    out = await flow.executable_task(resources=Resources(extra={"cwd": str(here)}))(lambda: "pwd")()
    assert out.strip() == str(here)


async def test_a_task_that_kills_its_worker_is_worker_lost_and_the_pool_goes_on(flow) -> None:
    await asyncio.wait_for(asyncio.gather(*(flow.function_task(add)(i, 1) for i in range(4))), 60)  # pool is up
    start = time.monotonic()
    with pytest.raises(WorkerLost, match="killed by signal 9"):
        await asyncio.wait_for(flow.function_task(die)(), 60)
    seconds = time.monotonic() - start
    assert seconds <= BOUND, f"took {seconds:.1f} s"
    for _ in range(2):  # the whole pool dies: a new one is started
        with pytest.raises(WorkerLost):
            await asyncio.wait_for(flow.function_task(die)(), 60)
    assert await asyncio.wait_for(asyncio.gather(*(flow.function_task(add)(i, 1) for i in range(4))), 60) == [
        1, 2, 3, 4
    ]


# -- cache -----------------------------------------------------------------------------------


async def test_cache_reuses_results_across_engines(tmp_path: Path) -> None:
    cache, runs = tmp_path / "cache", tmp_path / "runs.txt"
    values = []
    for _ in range(2):
        async with WorkflowEngine(backend=ExecutorlibExecutionBackend(max_workers=1, cache_directory=cache)) as flow:
            values.append(await asyncio.wait_for(flow.function_task(counted)(str(runs), 4), 60))
    assert values == [40, 40]
    assert runs.read_text().count("ran") == 1, "the body ran again although its result was cached"
    assert [p.suffix for p in cache.iterdir()] == [".h5"]


# -- what the user brought, what flowbridge made ------------------------------------------------------


async def test_your_executor_is_used_and_left_open() -> None:
    from executorlib import SingleNodeExecutor

    with SingleNodeExecutor(max_workers=1, block_allocation=True, hostname_localhost=True) as exe:
        async with WorkflowEngine(backend=ExecutorlibExecutionBackend(exe)) as flow:
            assert await asyncio.wait_for(flow.function_task(add)(2, 3), 60) == 5
            assert (await flow.executable_task(lambda: "echo yours")()).strip() == "yours"
        assert exe.submit(add, 1, 1).result(timeout=60) == 2  # still open


async def test_shutdown_leaves_no_process_no_run_dir_no_litter(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    backend = ExecutorlibExecutionBackend(max_workers=2)
    async with WorkflowEngine(backend=backend) as flow:
        await flow.function_task(add)(1, 1)
        await flow.function_task(resources=Resources(threads=2))(add)(1, 1)
        run_dir = backend.run_dir
        assert run_dir is not None and leftovers(str(run_dir), seconds=0)
    assert leftovers(str(run_dir)) == []
    assert not run_dir.exists()
    assert list(tmp_path.iterdir()) == []


# -- commands die with their task -------------------------------------------------------------------


async def test_a_command_dies_with_its_task_on_timeout_and_cancel(flow, tmp_path: Path) -> None:
    from flowbridge import TaskTimeout
    from flowbridge.toolkit import procs

    owner = flow.backends["default"].owner_tag

    def sleeping() -> list[int]:
        return procs.find({procs.OWNER_ENV: owner}, text="sleep 42")

    with pytest.raises(TaskTimeout):
        await asyncio.wait_for(flow.executable_task(timeout=1)(lambda: "sleep 42")(), 60)
    assert leftovers_of(sleeping) == []
    task = flow.executable_task(lambda: "sleep 42")()
    deadline = time.monotonic() + 30
    while not sleeping() and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    assert sleeping(), "the command never started"
    task.cancel()
    assert leftovers_of(sleeping) == []


def leftovers_of(find, seconds: float = 5.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while (found := find()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found


# -- the paper's interface ------------------------------------------------------------------------------


def test_the_paper_executor_by_its_backend_names() -> None:
    from flowbridge_executorlib import Executor

    with Executor(backend="local", max_workers=2) as exe:
        future_lst = [exe.submit(sum, [i, i]) for i in range(1, 5)]
        assert [fs.result(timeout=60) for fs in future_lst] == [2, 4, 6, 8]
        fs = exe.submit(sum, [1, 1])
        for _ in range(3):
            fs = exe.submit(sum, [fs, fs])  # futures as arguments: dependencies
        assert fs.result(timeout=60) == 16
        pid, _ = exe.submit(where, resource_dict={"cores": 1, "threads_per_core": 2}).result(timeout=60)
        assert pid != os.getpid()
    backend = Executor.__init__.__globals__["ExecutorlibExecutionBackend"]
    assert backend is ExecutorlibExecutionBackend
    with pytest.raises(BackendUnavailable, match="Flux"):
        Executor(backend="flux_allocation")


def test_flowbridge_executor_facade_on_executorlib(tmp_path: Path) -> None:
    from flowbridge import Executor

    with Executor(backend="executorlib") as exe:
        fs = exe.submit(where, resource_dict={"cwd": str(tmp_path / "w")})
        assert fs.result(timeout=60)[1] == str(tmp_path / "w")
        assert exe.submit(sum, [exe.submit(sum, [1, 2]), 3]).result(timeout=60) == 6


async def test_a_command_on_one_node_takes_only_a_cwd(flow) -> None:
    with pytest.raises(UnsupportedResource, match="put the count in the command"):
        await asyncio.wait_for(flow.executable_task(resources=Resources(threads=2))(lambda: "true")(), 60)
