"""HTEX with SlurmProvider on the real single-node SLURM the test suite starts."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from flowbridge import WorkflowEngine
from flowbridge._registry import create

pytestmark = [pytest.mark.slurm, pytest.mark.slow]
QUICK = 90.0


def job_env() -> dict[str, str | None]:
    return {k: os.environ.get(k) for k in ("SLURM_JOB_ID", "SLURM_JOB_PARTITION", "PARSL_WORKER_RANK")}


@pytest.mark.timeout(180)
async def test_tasks_run_in_a_slurm_job_and_no_job_is_left(slurm: Any, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)  # sbatch runs here; nothing may be written here
    # Built as a profile would build it: registry name and plain options.
    backend = create(
        "parsl",
        {
            "provider": "slurm",
            "partition": slurm.partition,
            "nodes_per_block": 1,
            "cores_per_node": 1,
            "walltime": "00:05:00",
            "launcher": "srun",
        },
    )
    async with WorkflowEngine(backend=backend) as flow:
        env = await asyncio.wait_for(flow.function_task(job_env)(), QUICK)
        assert env["SLURM_JOB_ID"] and env["SLURM_JOB_ID"] in slurm.active_jobs()
        assert env["SLURM_JOB_PARTITION"] == slurm.partition and env["PARSL_WORKER_RANK"] == "0"
        echoed = flow.executable_task(lambda: "echo $SLURM_JOB_ID")()
        assert (await asyncio.wait_for(echoed, QUICK)).strip() == env["SLURM_JOB_ID"]
        busy = flow.function_task(job_env)()  # still queued or running at shutdown
        await asyncio.sleep(0)
        await flow.shutdown(cancel=True)
    assert busy.cancelled() or busy.done()
    ours = set(backend.dfk.executors["flowbridge_htex"].provider.resources)
    assert env["SLURM_JOB_ID"] in ours
    # shutdown waited for the job to leave the queue (the cluster may be shared: look at ours only)
    assert ours.isdisjoint(slurm.active_jobs())
    assert list(tmp_path.iterdir()) == []


def _job_of(pid: int) -> str:
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return next(e.split(b"=", 1)[1].decode() for e in environ if e.startswith(b"SLURM_JOB_ID="))


@pytest.mark.timeout(240)
def test_ctrl_c_leaves_no_job_in_the_queue(slurm: Any, tmp_path: Path) -> None:
    """Ctrl-C while a SLURM block runs ``sleep 42``: within 10 s the script ended and its job left squeue."""
    from test_parsl_stop import ASYNCIO_RUN, BOUND, assert_nothing_left, script, sleeps, wait_for_sleep

    options = {"provider": "slurm", "partition": slurm.partition, "cores_per_node": 1, "walltime": "00:05:00"}
    wf, root = script(tmp_path, ASYNCIO_RUN, "python", options=options, nap=False)
    wf.start()
    try:
        wait_for_sleep(wf, root)
        job = _job_of(sleeps(root)[0])
        assert job in slurm.active_jobs()
        seconds = wf.interrupt()
    finally:
        wf.kill()
    print(f"Ctrl-C to exit: {seconds:.2f} s")  # the figure the docs quote (pytest -s)
    assert seconds < BOUND, f"the script took {seconds:.1f} s to end after Ctrl-C (bound {BOUND} s)"
    assert "KeyboardInterrupt" in wf.stderr, wf.stderr[-3000:]
    assert job not in slurm.active_jobs(), f"job {job} still in squeue after the script ended"
    assert_nothing_left(root)
