"""Helpers shared by the Dask adapter tests: a real scheduler and workers started by the CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil


def dask_cli() -> list[str]:
    """The venv's ``dask`` command by absolute path (never whatever is first on PATH)."""
    script = Path(sys.executable).with_name("dask")
    return [str(script)] if script.exists() else [sys.executable, "-m", "dask"]


@dataclass
class CliCluster:
    """``dask scheduler`` and ``dask worker`` as separate processes on 127.0.0.1."""

    scheduler_file: Path
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    address: str = ""

    def alive(self) -> bool:
        return all(p.poll() is None for p in self.procs)

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for p in self.procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
                p.wait()


def start_cli_cluster(tmp: Path, workers: int = 2, resources: str = "FOO=2") -> CliCluster:
    """A scheduler (port 0, scheduler file in ``tmp``) and ``workers`` worker processes."""
    sched_file = tmp / "scheduler.json"
    env = {
        **os.environ,
        "DASK_TEMPORARY_DIRECTORY": str(tmp),  # scratch space stays in the test's temp dir
        "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "1",  # KilledWorker after 2 deaths, not 4
        # The tests' own plain-Dask calls pickle test functions by reference: let the cluster
        # import them, as a user's cluster imports the user's code.
        "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")])),
    }
    cluster = CliCluster(sched_file)
    log = open(tmp / "cli.log", "wb")
    try:
        cluster.procs.append(
            subprocess.Popen(
                [
                    *dask_cli(),
                    "scheduler",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    "0",
                    "--no-dashboard",
                    "--scheduler-file",
                    str(sched_file),
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=tmp,
            )
        )
        deadline = time.monotonic() + 60
        while not sched_file.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        cluster.procs.append(
            subprocess.Popen(
                [
                    *dask_cli(),
                    "worker",
                    "--scheduler-file",
                    str(sched_file),
                    "--host",
                    "127.0.0.1",
                    "--nworkers",
                    str(workers),
                    "--nthreads",
                    "1",
                    "--no-dashboard",
                    "--local-directory",
                    str(tmp),
                    "--resources",
                    resources,
                ],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=tmp,
            )
        )
    finally:
        log.close()
    import json

    while time.monotonic() < deadline:
        try:
            cluster.address = json.loads(sched_file.read_text())["address"]
            break
        except (OSError, ValueError, KeyError):
            time.sleep(0.1)
    from distributed import Client

    with Client(cluster.address, timeout=60) as client:
        client.wait_for_workers(workers, timeout=60)
    return cluster


class PeakRSS:
    """The driver's resident memory, sampled every few ms on a thread: baseline and peak."""

    def __init__(self) -> None:
        self._proc = psutil.Process()
        self.baseline = self.peak = self._proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._proc.memory_info().rss)

    def __enter__(self) -> PeakRSS:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._proc.memory_info().rss)

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.baseline) / 1e6
