"""dask-jobqueue on a real single-node SLURM (started by tests/infra/slurm.sh): tasks run inside
SLURM jobs, scancel of a worker job ends in a retry or WorkerLost, and shutdown leaves no job."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from flowbridge import DaskExecutionBackend, Resources, UnsupportedResource, WorkerLost, WorkflowEngine

pytestmark = [pytest.mark.slurm, pytest.mark.slow]
QUICK = 90


def where() -> dict[str, Any]:
    return {"job": os.environ.get("SLURM_JOB_ID"), "pid": os.getpid()}


def note_job_then_sleep(path: str, seconds: float) -> str:
    """Sleeps on its first run only (long enough to outlive the worker's graceful close)."""
    job = os.environ.get("SLURM_JOB_ID", "")
    first = not os.path.exists(path)
    with open(path, "a") as fh:
        fh.write(job + "\n")
    if first:
        time.sleep(seconds)
    return job


def jobs_named(name: str) -> list[str]:
    """Our jobs (by name: other sessions may use the same SLURM) that are not finished."""
    out = subprocess.run(
        ["squeue", "-h", "-n", name, "-t", "PENDING,RUNNING,COMPLETING,CONFIGURING,SUSPENDED", "-o", "%i"],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    return out.split()


async def test_slurm_jobs_run_tasks_survive_scancel_and_leave_nothing(slurm: Any, tmp_path: Path) -> None:
    name = f"fb-dask-{uuid.uuid4().hex[:8]}"
    backend = DaskExecutionBackend(
        jobqueue="slurm",
        jobs=1,
        queue=slurm.partition,
        cores=1,
        memory="1GB",
        walltime="00:05:00",
        job_name=name,
    )
    t0 = time.perf_counter()
    flow = await asyncio.wait_for(WorkflowEngine.create(backend=backend), QUICK)
    try:
        assert backend.cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        first = await asyncio.wait_for(flow.function_task(where)(), QUICK)
        first_task_s = time.perf_counter() - t0
        assert first["job"] in jobs_named(name) and first["pid"] != os.getpid()
        echoed = await asyncio.wait_for(flow.executable_task(lambda: "echo $SLURM_JOB_ID")(), QUICK)
        assert echoed.strip() == first["job"]
        # cores=1 per job: a task asking for two is refused at once, not left pending.
        with pytest.raises(UnsupportedResource, match="CPU=2"):
            await asyncio.wait_for(flow.function_task(resources=Resources(cores=2))(where)(), QUICK)
        assert (await flow.function_task(resources=Resources(cores=1, memory="500MB"))(where)())["job"]

        # scancel the job running a task: Dask reruns it on the replacement job (adapt keeps
        # one job alive), or the engine's retry does; either way the task ends, never hangs.
        notes = tmp_path / "jobs-seen"
        task = flow.function_task(retries=1)(note_job_then_sleep)(str(notes), 60.0)
        while not notes.exists():
            await asyncio.sleep(0.1)
        killed = notes.read_text().split()[0]
        t1 = time.perf_counter()
        subprocess.run(["scancel", killed], check=True, timeout=30)
        try:
            ran_on = await asyncio.wait_for(task, QUICK)
            outcome = f"rerun on job {ran_on}"
            assert ran_on != killed
        except WorkerLost as exc:
            outcome = f"WorkerLost: {exc}"
        recovery_s = time.perf_counter() - t1
        print(
            f"\nSLURM: first task {first_task_s:.1f} s after start; scancel of job {killed}: {outcome} "
            f"after {recovery_s:.1f} s"
        )
    finally:
        t2 = time.perf_counter()
        await asyncio.wait_for(flow.shutdown(), QUICK)
        shutdown_s = time.perf_counter() - t2
    deadline = time.monotonic() + 30
    while jobs_named(name) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    print(f"SLURM: shutdown {shutdown_s:.1f} s; jobs left: {jobs_named(name)}")
    assert jobs_named(name) == []
    assert backend.run_dir is not None and not backend.run_dir.exists()
