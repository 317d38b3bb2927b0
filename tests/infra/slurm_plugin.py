"""pytest plugin: a real single-node SLURM for the session, started by tests/infra/slurm.sh.

Load with ``pytest_plugins = ["infra.slurm_plugin"]`` (``tests/`` on sys.path) or ``-p infra.slurm_plugin``.

Environment:
    FLOWBRIDGE_SLURM_INSTALL=1  install the Debian packages first (root) instead of skipping when absent
    FLOWBRIDGE_SLURM_DIR        state directory (default /tmp/flowbridge-slurm)
"""

from __future__ import annotations

import getpass
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SLURM_SH = Path(__file__).with_name("slurm.sh")
ACTIVE_STATES = "PENDING,RUNNING,SUSPENDED,COMPLETING,CONFIGURING,RESIZING,REQUEUED,STOPPED,SIGNALING"


def squeue_ids(states: str = "all", user: str | None = None) -> list[str]:
    """Job ids squeue lists for ``user`` (default: the current user) in ``states`` ("all" includes
    jobs that finished less than MinJobAge=30 s ago)."""
    out = subprocess.run(
        ["squeue", "-h", "-t", states, "-u", user or getpass.getuser(), "-o", "%i"],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    return out.split()


@dataclass(frozen=True)
class SlurmCluster:
    state_dir: Path
    conf: Path
    partition: str = "debug"

    def jobs(self) -> list[str]:
        """Ids of the current user's jobs in squeue, any state (finished ones linger ~30 s)."""
        return squeue_ids("all")

    def active_jobs(self) -> list[str]:
        """Ids of the current user's jobs that are not finished yet."""
        return squeue_ids(ACTIVE_STATES)

    def wait_no_jobs(self, timeout: float = 30.0) -> None:
        """Wait until no job of the current user is pending, running or completing."""
        deadline = time.monotonic() + timeout
        while ids := self.active_jobs():
            if time.monotonic() > deadline:
                raise TimeoutError(f"SLURM jobs still active after {timeout} s: {ids}")
            time.sleep(0.2)


def _run_sh(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(SLURM_SH), *args], capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="session")
def slurm() -> Iterator[SlurmCluster]:
    install = os.environ.get("FLOWBRIDGE_SLURM_INSTALL") == "1"
    if shutil.which("sbatch") is None and not install:
        pytest.skip("SLURM not installed; run tests/infra/slurm.sh install (as root)")
    if os.geteuid() != 0:
        pytest.skip("the test SLURM cluster is started as root; tests/infra/slurm.sh needs root")
    if install:
        res = _run_sh("install")
        if res.returncode != 0:
            pytest.fail(f"slurm.sh install failed:\n{res.stderr[-4000:]}", pytrace=False)
    state_dir = Path(os.environ.get("FLOWBRIDGE_SLURM_DIR", "/tmp/flowbridge-slurm")).resolve()
    res = _run_sh("up", str(state_dir))
    lines = res.stdout.strip().splitlines()
    if res.returncode != 0 or not lines or not lines[-1].startswith("export SLURM_CONF="):
        pytest.fail(f"slurm.sh up failed (rc={res.returncode}):\n{res.stderr[-4000:]}", pytrace=False)
    conf = Path(lines[-1].removeprefix("export SLURM_CONF="))
    saved = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = str(conf)
    try:
        yield SlurmCluster(state_dir=state_dir, conf=conf)
    finally:
        down = _run_sh("down", str(state_dir))
        if saved is None:
            os.environ.pop("SLURM_CONF", None)
        else:
            os.environ["SLURM_CONF"] = saved
        if down.returncode != 0:
            pytest.fail(f"slurm.sh down failed:\n{down.stderr[-4000:]}", pytrace=False)
