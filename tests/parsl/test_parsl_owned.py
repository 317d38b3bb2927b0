"""DataFlowKernels the adapter owns: built, cleaned up, nothing left behind, not even when the owner dies."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import psutil
from parsl_helpers import user_config

from flowbridge import ParslExecutionBackend, TaskState, WorkflowEngine
from flowbridge.testing.bodies import add, sleep_then

QUICK = 60.0


def parsl_processes(run_dir: Path, owner: psutil.Process, known: set[int] = frozenset()) -> list[psutil.Process]:
    """The processes of a Parsl run: the owner's new children (the interchange) and the worker pool
    (named by its run directory) with everything it started (the workers)."""
    found = {p.pid: p for p in owner.children(recursive=True) if p.pid not in known}
    for proc in psutil.process_iter(["cmdline"]):
        if str(run_dir) in " ".join(proc.info["cmdline"] or []):
            found[proc.pid] = proc
            try:
                found.update((c.pid, c) for c in proc.children(recursive=True))
            except psutil.NoSuchProcess:
                pass
    return list(found.values())


def running(procs: list[psutil.Process]) -> list[psutil.Process]:
    alive = []
    for proc in procs:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(proc)
        except psutil.NoSuchProcess:
            pass
    return alive


async def test_owned_htex_settles_everything_and_leaves_nothing(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    me = psutil.Process()
    known = {p.pid for p in me.children(recursive=True)}
    backend = ParslExecutionBackend()
    engine = await asyncio.wait_for(WorkflowEngine.create(backend=backend), QUICK)
    run_dir = backend.run_dir
    assert run_dir is not None and run_dir.is_relative_to(os.environ["FLOWBRIDGE_RUN_DIR"])
    assert await asyncio.wait_for(engine.function_task(add)(1, 2), QUICK) == 3
    procs = parsl_processes(run_dir, me, known)
    names = " ".join(" ".join(p.cmdline()) for p in procs)
    assert "interchange" in names and "process_worker_pool" in names and "spawn_main" in names, names

    sleepers = [engine.function_task(sleep_then)(30.0) for _ in range(4)]  # more than the workers
    waiting = engine.function_task(add)(sleepers[0], 1)
    await asyncio.sleep(0.5)
    await asyncio.wait_for(engine.shutdown(cancel=True), QUICK)

    assert all(t.state is TaskState.CANCELLED for t in [*sleepers, waiting])
    assert backend.dfk.cleanup_called
    assert running(procs) == []
    assert not run_dir.exists()
    assert list(tmp_path.iterdir()) == [], "Parsl wrote into the working directory"


async def test_owned_from_config_keeps_the_cwd_clean(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    me = psutil.Process()
    known = {p.pid for p in me.children(recursive=True)}
    # Parsl's defaults: ./runinfo, and interchange.py / process_worker_pool.py from PATH (not there)
    config = user_config(tmp_path / "unused", interchange_launch_cmd=None, launch_cmd=None)
    config.run_dir = "runinfo"
    backend = ParslExecutionBackend(config=config)
    async with WorkflowEngine(backend=backend) as engine:
        assert await asyncio.wait_for(engine.executable_task(lambda: "echo ok")(), QUICK) == "ok\n"
        run_dir = backend.run_dir
        assert run_dir is not None and run_dir.is_relative_to(os.environ["FLOWBRIDGE_RUN_DIR"])
        procs = parsl_processes(run_dir, me, known)
    assert backend.dfk.cleanup_called
    assert procs and running(procs) == []
    assert list(tmp_path.iterdir()) == []


# The owner killed with kill -9: tests/parsl/test_parsl_stop.py::test_kill_9_of_the_driver_leaves_nothing
