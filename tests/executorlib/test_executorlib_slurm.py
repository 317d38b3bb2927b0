"""executorlib on a real single-node SLURM (started by tests/infra/slurm.sh).

* ``slurm_job``: the test makes an allocation (sbatch of a driver script); inside it every
  worker is an srun step: tasks see the job, resources reach srun, a failing srun surfaces at once.
* ``slurm_cluster``: one sbatch job per task (pysqa): tasks see their job, resources reach
  sbatch, a scancel'd job fails its task within 30 s, and no job is left after shutdown.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from flowbridge import ExecutorlibExecutionBackend, Resources, WorkerLost, WorkflowEngine
from stop_helpers import leftovers

pytestmark = [pytest.mark.slurm, pytest.mark.slow]
QUICK = 120


def env_of() -> dict[str, Any]:
    keys = ("SLURM_JOB_ID", "SLURM_STEP_ID", "SLURM_CPUS_PER_TASK", "SLURM_NTASKS", "SLURM_JOB_NAME")
    return {k: os.environ.get(k) for k in keys}


def nap(seconds: float) -> str | None:
    time.sleep(seconds)
    return os.environ.get("SLURM_JOB_ID")


def _jobs(prefix: str, states: str = "PENDING,RUNNING,COMPLETING,CONFIGURING,SUSPENDED") -> list[str]:
    out = subprocess.run(
        ["squeue", "-h", "-t", states, "-o", "%i|%j"], capture_output=True, text=True, timeout=30, check=True
    ).stdout
    return [i for i, _, name in (line.partition("|") for line in out.splitlines()) if name.startswith(prefix)]


DRIVER = """
import asyncio, json, os, subprocess, sys, time
from flowbridge import ExecutorlibExecutionBackend, Resources, WorkflowEngine
from flowbridge.toolkit import procs

def env_of():
    keys = ("SLURM_JOB_ID", "SLURM_STEP_ID", "SLURM_CPUS_PER_TASK", "FLOWBRIDGE_OWNER")
    return {k: os.environ.get(k) for k in keys}

async def main():
    out = {}
    backend = ExecutorlibExecutionBackend(kind="slurm_job", max_workers=1)
    async with WorkflowEngine(backend=backend) as flow:
        out["plain"] = await flow.function_task(env_of)()
        out["cores2"] = await flow.function_task(resources=Resources(cores=2))(env_of)()
        out["command"] = await flow.executable_task(lambda: "echo $SLURM_JOB_ID")()
        start = time.monotonic()
        try:
            await asyncio.wait_for(flow.function_task(resources=Resources(cores=64))(env_of)(), 60)
        except Exception as exc:
            out["too_big"] = [type(exc).__name__, str(exc), time.monotonic() - start]
        run_dir = str(backend.run_dir)
    out["left"] = procs.find(text=run_dir)
    out["run_dir_left"] = os.path.exists(run_dir)
    print("RESULT " + json.dumps(out), flush=True)

asyncio.run(main())
"""


def test_slurm_job_runs_workers_as_srun_steps_of_the_allocation(slurm: Any, tmp_path: Path) -> None:
    script = tmp_path / "driver.py"
    script.write_text(textwrap.dedent(DRIVER))
    name = f"fb-exl-test-{os.getpid()}"
    env = {**os.environ, "FLOWBRIDGE_RUN_DIR": str(tmp_path / "run"), "PYTHONUNBUFFERED": "1"}
    job = subprocess.run(
        ["sbatch", "--parsable", "-n", "1", "-c", "3", "-J", name, "-o", str(tmp_path / "out.txt"),
         "-D", str(tmp_path), f"--wrap={sys.executable} {script}"],
        capture_output=True, text=True, timeout=30, env=env, check=True,
    ).stdout.strip().split(";")[0]
    deadline = time.monotonic() + 180
    while _jobs(name) and time.monotonic() < deadline:
        time.sleep(0.5)
    text = (tmp_path / "out.txt").read_text() if (tmp_path / "out.txt").exists() else ""
    lines = [line for line in text.splitlines() if line.startswith("RESULT ")]
    assert lines, f"the driver job printed no result:\n{text[-4000:]}"
    out = json.loads(lines[-1].removeprefix("RESULT "))
    assert out["plain"]["SLURM_JOB_ID"] == job and out["plain"]["SLURM_STEP_ID"] is not None
    assert out["plain"]["FLOWBRIDGE_OWNER"], "the srun step is not tagged with its owner"
    assert out["cores2"]["SLURM_JOB_ID"] == job and out["cores2"]["SLURM_CPUS_PER_TASK"] == "2"
    assert out["command"].strip() == job
    kind, message, seconds = out["too_big"]
    assert kind == "WorkerLost" and "srun" in message, message
    assert seconds <= 10, f"a failing srun took {seconds:.1f} s to surface"
    assert out["left"] == [] and out["run_dir_left"] is False


async def test_slurm_cluster_one_job_per_task_scancel_and_nothing_left(slurm: Any, tmp_path: Path) -> None:
    backend = ExecutorlibExecutionBackend(kind="slurm_cluster")
    flow = await asyncio.wait_for(WorkflowEngine.create(backend=backend), QUICK)
    assert backend.run_dir is not None
    prefix = f"fb-{backend.run_dir.name}-"
    try:
        plain = await asyncio.wait_for(flow.function_task(env_of)(), QUICK)
        assert plain["SLURM_JOB_ID"] and plain["SLURM_JOB_NAME"].startswith(prefix)
        two = await asyncio.wait_for(flow.function_task(resources=Resources(cores=2, walltime=120))(env_of)(), QUICK)
        assert two["SLURM_NTASKS"] == "2" and two["SLURM_JOB_ID"] != plain["SLURM_JOB_ID"]
        echoed = await asyncio.wait_for(flow.executable_task(lambda: "echo $SLURM_JOB_ID")(), QUICK)
        assert echoed.strip().isdigit()

        task = flow.function_task(nap)(120)
        deadline = time.monotonic() + QUICK
        while not (running := _jobs(prefix + task.uid, "RUNNING")) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        assert running, "the task's job never started"
        subprocess.run(["scancel", *running], check=True, timeout=30)
        start = time.monotonic()
        with pytest.raises(WorkerLost, match="CANCELLED"):
            await asyncio.wait_for(task, 60)
        seconds = time.monotonic() - start
        assert seconds <= 30, f"a scancel'd job took {seconds:.1f} s to fail its task"

        flow.function_task(nap)(300)  # still queued or running at shutdown
        deadline = time.monotonic() + QUICK
        while not _jobs(prefix) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
    finally:
        await asyncio.wait_for(flow.shutdown(cancel=True), 30)
    deadline = time.monotonic() + 30
    while _jobs(prefix) and time.monotonic() < deadline:
        await asyncio.sleep(0.2)
    assert _jobs(prefix) == [], "a SLURM job outlived the shutdown"
    assert leftovers(str(backend.run_dir)) == []
    assert not backend.run_dir.exists()
