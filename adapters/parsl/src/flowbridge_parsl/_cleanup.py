"""Cleaning up an owned DataFlowKernel until nothing of it is left running.

``dfk.cleanup()`` asks the providers to cancel the blocks and returns: a local
block's processes take a moment to exit (or ignore SIGTERM), a SLURM job goes
through COMPLETING. This waits for both, bounded, and kills what is left of a
local block. Every blocking call here runs on a daemon thread of
:func:`flowbridge.toolkit.blocking.off_loop` with a time limit; what outlives the
limit is killed by the owner tag (:func:`kill_owned`).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from typing import Any

from flowbridge.toolkit import procs

_log = logging.getLogger("flowbridge.parsl")
GRACE = 5.0  # seconds a local block gets to exit after SIGTERM
JOB_WAIT = 20.0  # seconds to wait for cancelled batch jobs to leave the queue


def _local_groups(dfk: Any) -> list[int]:
    from parsl.providers import LocalProvider

    groups = []
    for executor in dfk.executors.values():
        provider = getattr(executor, "provider", None)
        if isinstance(provider, LocalProvider):
            for job in provider.resources.values():
                try:
                    groups.append(os.getpgid(job["remote_pid"]))
                except (OSError, KeyError, TypeError):
                    pass
    return [g for g in groups if g not in (0, 1, os.getpgrp())]


def batch_jobs(dfk: Any) -> list[tuple[Any, list[str]]]:
    from parsl.providers import LocalProvider

    jobs = []
    for executor in dfk.executors.values():
        provider = getattr(executor, "provider", None)
        resources = getattr(provider, "resources", None)
        if provider is not None and not isinstance(provider, LocalProvider) and resources:
            jobs.append((provider, list(resources)))
    return jobs


def _queued(provider: Any, job_ids: list[str]) -> list[str]:
    """Which of the jobs the batch system still has (pending, running or completing).

    The provider marks a job CANCELLED as soon as ``scancel`` returns, so ask the
    queue itself (SLURM); other providers are asked through ``status``.
    """
    from parsl.providers import SlurmProvider

    if not isinstance(provider, SlurmProvider):
        states = provider.status(job_ids)
        return [j for j, s in zip(job_ids, states, strict=True) if not s.terminal]
    clusters = [f"--clusters={provider.clusters}"] if provider.clusters else []

    def ask(ids: list[str]) -> dict[str, str] | None:
        # subprocess.run, not provider.execute_wait: that one leaves the process behind on a timeout
        argv = ["squeue", *clusters, "--noheader", "--format=%i %T", f"--jobs={','.join(ids)}"]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=provider.cmd_timeout)
        lines = [line.split() for line in done.stdout.splitlines()]
        return dict(line[:2] for line in lines if len(line) >= 2) if done.returncode == 0 else None

    listed = ask(job_ids)
    if listed is None:  # squeue refuses a list holding an id it no longer knows: ask one by one
        listed = {}
        for job in job_ids:
            listed.update(ask([job]) or {})
    return [j for j in job_ids if listed.get(j, "COMPLETED") not in _ENDED]


_ENDED = {
    "COMPLETED",
    "CANCELLED",
    "FAILED",
    "TIMEOUT",
    "NODE_FAIL",
    "PREEMPTED",
    "BOOT_FAIL",
    "DEADLINE",
    "OUT_OF_MEMORY",
    "REVOKED",
    "SPECIAL_EXIT",
}


def _cancel(provider: Any, job_ids: list[str], timeout: float | None = None) -> None:
    from parsl.providers import SlurmProvider

    if isinstance(provider, SlurmProvider):
        clusters = [f"--clusters={provider.clusters}"] if provider.clusters else []
        argv = ["scancel", *clusters, *job_ids]
        subprocess.run(argv, capture_output=True, timeout=timeout or provider.cmd_timeout)
    else:
        provider.cancel(job_ids)


def end_jobs(provider: Any, job_ids: list[str], deadline: float) -> None:
    """Cancel what Parsl left queued (it cancels only the blocks it still counts as alive), then wait."""
    cancelled = False
    while True:
        try:
            left = _queued(provider, job_ids)
            if left and not cancelled:
                _cancel(provider, left, timeout=max(1.0, min(provider.cmd_timeout, deadline - time.monotonic())))
                cancelled = True
        except Exception as exc:
            _log.warning("cannot check that batch jobs %s ended: %r", job_ids, exc)
            return
        if not left:
            return
        if time.monotonic() > deadline:
            _log.warning("batch jobs %s still queued after they were cancelled", left)
            return
        time.sleep(0.25)


def dfk_cleanup(dfk: Any) -> None:
    """Blocking: ``dfk.cleanup()`` alone (the caller kills what is left by the owner tag)."""
    dfk.cleanup()


def cleanup(dfk: Any) -> None:
    """Blocking: clean up the DataFlowKernel and wait until its blocks are gone."""
    groups = _local_groups(dfk)
    jobs = batch_jobs(dfk)
    try:
        dfk.cleanup()
    finally:
        deadline = time.monotonic() + GRACE
        for pgid in groups:
            while procs.group_members(pgid):
                if time.monotonic() > deadline:
                    _log.warning("Parsl block (process group %d) still running after SIGTERM; killing it", pgid)
                    try:
                        os.killpg(pgid, signal.SIGKILL)
                    except OSError:
                        pass
                    break
                time.sleep(0.05)
        deadline = time.monotonic() + JOB_WAIT
        for provider, job_ids in jobs:
            end_jobs(provider, job_ids, deadline)


def kill_commands(owner: str, tags: set[str], wait: float = 2.0) -> list[int]:
    """Kill the commands of the given tasks (``FLOWBRIDGE_TASK`` in ``tags``) with their trees, on this host.

    One scan of ``/proc`` for the owner's processes, whatever the number of tasks.
    """
    if not tags:
        return []
    wanted = {f"{procs.TASK_ENV}={tag}".encode() for tag in tags}
    pids = []
    for pid in procs.find({procs.OWNER_ENV: owner}):
        try:
            with open(f"/proc/{pid}/environ", "rb") as fh:
                environ = set(fh.read().split(b"\0"))
        except OSError:
            continue
        if environ & wanted:
            pids.append(pid)
    procs.kill(pids)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and any(procs.alive(p) for p in pids):
        time.sleep(0.02)
    return pids


def kill_owned(owner: str, jobs: list[tuple[Any, list[str]]], deadline: float | None) -> None:
    """SIGKILL every process tagged ``owner`` on this host, cancel the batch jobs and wait until
    they left the queue (until ``deadline``; None: cancel them and return)."""
    procs.reap({procs.OWNER_ENV: owner}, wait=1.0 if deadline is None else max(0.1, min(2.0, _left(deadline))))
    for provider, job_ids in jobs:
        if deadline is None:
            try:
                _cancel(provider, job_ids, timeout=1.0)
            except Exception as exc:
                _log.warning("cannot cancel batch jobs %s: %r", job_ids, exc)
        else:  # those still queued are cancelled, then waited for
            end_jobs(provider, job_ids, deadline)


def _left(deadline: float) -> float:
    return deadline - time.monotonic()
