"""The SLURM test cluster itself: a batch job runs and sees its SLURM_JOB_ID."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from infra.slurm_plugin import SlurmCluster, squeue_ids

pytestmark = pytest.mark.slurm


def test_sbatch_job_runs_and_sees_job_id(slurm: SlurmCluster, tmp_path: Path) -> None:
    out = tmp_path / "job-%j.out"
    res = subprocess.run(
        ["sbatch", "--parsable", "-p", slurm.partition, "-o", str(out), "--wrap", "echo JOB=$SLURM_JOB_ID"],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    )
    job_id = res.stdout.strip().split(";")[0]
    assert job_id in squeue_ids()

    deadline = time.monotonic() + 60
    while job_id in slurm.active_jobs():
        assert time.monotonic() < deadline, f"job {job_id} did not finish within 60 s"
        time.sleep(0.2)
    state = subprocess.run(
        ["squeue", "-h", "-t", "all", "-j", job_id, "-o", "%T"], capture_output=True, text=True, timeout=30
    ).stdout.strip()
    assert state == "COMPLETED"
    assert (tmp_path / f"job-{job_id}.out").read_text().strip() == f"JOB={job_id}"
    slurm.wait_no_jobs(timeout=10)
