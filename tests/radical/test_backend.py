"""The RADICAL-Pilot adapter on a real pilot: what the conformance suite does not cover.

Most tests make an adapter on the package's shared pilot (``reuse``); the last one
submits a pilot of its own to the shared session and kills it. Task bodies are
closures or built with ``exec`` as ``__main__`` code: a RAPTOR worker cannot import
this test module (pytest put its folder on ``sys.path`` by hand).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import time
import urllib.parse
from typing import Any

import pytest
from radical_helpers import ENV_BEFORE, processes_mentioning, processes_working_in, wait_until_gone

from flowbridge import (
    RadicalExecutionBackend,
    Resources,
    TaskFailed,
    TaskTimeout,
    UnsupportedResource,
    WorkerLost,
    WorkflowEngine,
)
from flowbridge.testing.bodies import sleep_then

pytestmark = pytest.mark.timeout(300)  # the first test may wait for the shared pilot to start
QUICK = 60.0


@pytest.fixture
async def flow(reuse: Any) -> Any:
    engine = await WorkflowEngine.create(backend=reuse)
    yield engine
    await asyncio.wait_for(engine.shutdown(cancel=True), QUICK)


def main_function(source: str, name: str) -> Any:
    """A function compiled as if it were written in a script run as ``__main__``."""
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(source, namespace)
    return namespace[name]


# -- executables ------------------------------------------------------------------------------


async def test_whole_stdout_not_rps_last_1024_characters(flow: WorkflowEngine) -> None:
    out = await asyncio.wait_for(flow.executable_task(lambda: "seq 1 3000")(), QUICK)
    assert out == "".join(f"{i}\n" for i in range(1, 3001))


async def test_missing_binary_fails_with_exit_code(flow: WorkflowEngine) -> None:
    with pytest.raises(TaskFailed) as info:
        await asyncio.wait_for(flow.executable_task(lambda: ["flowbridge-no-such-binary"])(), QUICK)
    assert info.value.exit_code == 127


async def test_resources_reach_the_task_description(flow: WorkflowEngine) -> None:
    res = Resources(
        cores=1, memory="64MB", extra={"environment": {"FB_WORD": "hello"}, "pre_exec": ["export FB_PRE=pre"]}
    )
    out = await asyncio.wait_for(flow.executable_task(resources=res)(lambda: "echo $FB_WORD $FB_PRE")(), QUICK)
    assert out == "hello pre\n"


async def test_mpi_task_runs_two_ranks(flow: WorkflowEngine) -> None:
    task = flow.executable_task(resources=Resources(ranks=2))(lambda: "echo rank=$OMPI_COMM_WORLD_RANK")()
    out = await asyncio.wait_for(task, QUICK)
    assert sorted(out.split()) == ["rank=0", "rank=1"]


async def test_walltime_is_a_timeout(flow: WorkflowEngine) -> None:
    task = flow.executable_task(resources=Resources(walltime=1))(lambda: "sleep 30")()
    with pytest.raises(TaskTimeout, match="walltime"):
        await asyncio.wait_for(task, QUICK)
    fn = flow.function_task(resources=Resources(walltime=1))(sleep_then)(30)
    with pytest.raises(TaskTimeout, match="walltime"):
        await asyncio.wait_for(fn, QUICK)


async def test_cancel_kills_the_running_command(flow: WorkflowEngine) -> None:
    marker = f"flowbridge-cancel-{os.getpid()}-{time.monotonic_ns()}"
    res = Resources(extra={"environment": {"FB_MARKER": marker}})  # every process of the task has it
    task = flow.executable_task(resources=res)(lambda: "sleep 300")()
    deadline = time.monotonic() + QUICK
    while not processes_mentioning(marker):
        assert time.monotonic() < deadline, "the command never started"
        await asyncio.sleep(0.2)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not await asyncio.to_thread(wait_until_gone, marker), "the cancelled command still runs"


# -- functions --------------------------------------------------------------------------------


async def test_values_msgpack_cannot_encode(flow: WorkflowEngine) -> None:
    def odd_values() -> Any:
        return {1, 2}, 3 + 4j, b"\x00\xff", {(1, 2): "tuple key"}, lambda x: x + 1

    values = await asyncio.wait_for(flow.function_task(odd_values)(), QUICK)
    assert values[:4] == ({1, 2}, 3 + 4j, b"\x00\xff", {(1, 2): "tuple key"})
    assert values[4](41) == 42


async def test_remote_exception_keeps_its_type_and_fields(flow: WorkflowEngine) -> None:
    def run_false() -> None:
        subprocess.run(["false"], check=True)

    with pytest.raises(subprocess.CalledProcessError) as info:
        await asyncio.wait_for(flow.function_task(run_false)(), QUICK)
    assert info.value.returncode == 1


async def test_function_from_main(flow: WorkflowEngine) -> None:
    source = "import os\ndef where(x):\n    return x * 2, os.getpid(), __name__\n"
    double = main_function(source, "where")
    assert double.__module__ == "__main__"
    value, pid, module = await asyncio.wait_for(flow.function_task(double)(21), QUICK)
    assert (value, module) == (42, "__main__") and pid != os.getpid()


async def test_function_environment(flow: WorkflowEngine) -> None:
    def read() -> str | None:
        return os.environ.get("FB_FUNC")

    res = Resources(extra={"environment": {"FB_FUNC": "set"}})
    assert await asyncio.wait_for(flow.function_task(resources=res)(read)(), QUICK) == "set"


@pytest.mark.parametrize(
    "res",
    [
        Resources(threads=2),
        Resources(ranks=2),
        Resources(memory="1GB"),
        Resources(cores=64),
        Resources(extra={"pre_exec": ["true"]}),
        Resources(extra={"no_such_key": 1}),
    ],
    ids=["threads", "ranks", "memory", "cores", "pre_exec", "unknown"],
)
async def test_function_resources_refused(flow: WorkflowEngine, res: Resources) -> None:
    with pytest.raises(UnsupportedResource, match="'radical'"):
        await asyncio.wait_for(flow.function_task(resources=res)(sleep_then)(0), QUICK)


def test_environment_is_left_as_it_was(shared: Any) -> None:
    keys = (
        "PATH",
        "VIRTUAL_ENV",
        "RADICAL_BASE",
        "RADICAL_PILOT_BASE",
        "RADICAL_PROFILE",
        "RADICAL_REPORT",
        "RADICAL_DEFAULT_IFACE",
        "RADICAL_CONFIG_USER_DIR",
    )
    assert {k: os.environ.get(k) for k in keys} == {k: ENV_BEFORE.get(k) for k in keys}


async def test_reuse_closes_nothing(shared: Any) -> None:
    for _ in range(2):
        engine = await WorkflowEngine.create(
            backend=RadicalExecutionBackend(pilot=shared.pilot, task_manager=shared.task_manager, raptor=shared.raptor)
        )
        assert await asyncio.wait_for(engine.executable_task(lambda: "echo up")(), QUICK) == "up\n"
        await engine.shutdown()
    assert shared.pilot.state == "PMGR_ACTIVE" and shared.raptor.state not in ("DONE", "FAILED", "CANCELED")


async def test_own_raptor_on_your_pilot(shared: Any) -> None:
    backend = RadicalExecutionBackend(pilot=shared.pilot)  # its TaskManager, a RAPTOR master of our own
    engine = await asyncio.wait_for(WorkflowEngine.create(backend=backend), QUICK)
    try:
        assert backend.raptor is not shared.raptor and backend.task_manager is shared.task_manager
        assert await asyncio.wait_for(engine.function_task(sleep_then)(0, "own raptor"), QUICK * 2) == "own raptor"
        run_dir, raptor = backend.run_dir, backend.raptor
    finally:
        await asyncio.wait_for(engine.shutdown(), QUICK)
    assert raptor.state == "CANCELED" and shared.raptor.state not in ("DONE", "FAILED", "CANCELED")
    assert run_dir is not None and not run_dir.exists()
    assert shared.pilot.state == "PMGR_ACTIVE"


# -- a pilot of its own on the shared session: it dies ----------------------------------------


async def test_dead_pilot_fails_pending_tasks_then_closes_cleanly(shared: Any, run_root: Any) -> None:
    backend = RadicalExecutionBackend(
        {"resource": "local.localhost", "cores": 4}, session=shared.session, run_dir=run_root / "dying"
    )
    mine = logging.NullHandler()  # RP's close strips handlers up to the root logger: must be put back
    logging.getLogger().addHandler(mine)
    engine = await asyncio.wait_for(WorkflowEngine.create(backend=backend), 240)
    try:
        assert await asyncio.wait_for(engine.executable_task(lambda: "echo first")(), QUICK) == "first\n"
        pending = [engine.executable_task(lambda: "sleep 300")(), engine.function_task(sleep_then)(300)]
        await asyncio.sleep(1)
        # The pilot's own processes first (bootstrap, agent components: "rp.*"), so that
        # nothing is left to report on the tasks: RP then fires no task callbacks at all.
        # Only those working in the pilot's sandbox: the client's own components (the
        # PilotManager's launcher, which must see the pilot die) carry the run dir too.
        sandbox = str(run_root / "dying")
        pilot_dir = urllib.parse.urlparse(str(backend.pilot.pilot_sandbox)).path
        ours = set(processes_mentioning(sandbox))
        pilot_side = [
            p
            for p in processes_working_in(pilot_dir)
            if p in ours and (" rp." in p or "bootstrap" in p or "launch" in p)
        ]
        assert pilot_side, "no pilot processes found"
        _kill(pilot_side)
        for task in pending:
            with pytest.raises(WorkerLost):
                await asyncio.wait_for(task, 120)
        # A SIGKILLed local agent leaves its running tasks behind (a batch system would end them).
        _kill(processes_mentioning(sandbox))
        with pytest.raises(WorkerLost):
            await asyncio.wait_for(engine.executable_task(lambda: "echo late")(), QUICK)
    finally:
        await asyncio.wait_for(engine.shutdown(cancel=True), QUICK)
        kept = mine in logging.getLogger().handlers
        logging.getLogger().removeHandler(mine)
    assert kept, "the root logger lost a handler"
    assert not (run_root / "dying").exists()
    assert not await asyncio.to_thread(wait_until_gone, str(run_root / "dying"))
    assert shared.pilot.state == "PMGR_ACTIVE"


def _kill(processes: list[str]) -> None:
    for line in processes:
        try:
            os.kill(int(line.split(":")[0]), signal.SIGKILL)
        except ProcessLookupError:
            pass


# -- the benchmark, in quick mode on the shared pilot (its own start-up would cost ~40 s) ------


async def test_benchmark_quick(shared: Any, capsys: pytest.CaptureFixture[str]) -> None:
    import importlib
    import sys
    from pathlib import Path

    benchmarks = str(Path(__file__).resolve().parents[2] / "benchmarks")
    sys.path.insert(0, benchmarks)
    try:
        bench = importlib.import_module("bench_radical")
        harness = importlib.import_module("harness")
    finally:
        sys.path.remove(benchmarks)
    args = harness.parse_args("bench_radical", ["--quick", "--repeat", "1"])
    cases = await asyncio.wait_for(bench.measure(shared, 10, args.repeat), 120)
    assert harness.report("RADICAL-Pilot (quick)", cases, args) == 0  # no --check: never a timing verdict
    assert all(case.ratio is not None for case in cases)
    assert "executables, warm pilot" in capsys.readouterr().out
