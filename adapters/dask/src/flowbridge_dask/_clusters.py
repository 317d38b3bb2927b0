"""Where the Dask client comes from: a cluster flowbridge builds, or one the user brought.

Each maker returns a :class:`Connection` that says what flowbridge owns (and so
closes at shutdown) and, for clusters it built, which resources each worker
declares, so impossible requests are refused without asking the scheduler.
"""

from __future__ import annotations

import logging
import math
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dask.utils import parse_bytes
from distributed import Client, LocalCluster

import dask
from flowbridge import BackendUnavailable

_log = logging.getLogger("flowbridge.dask")

#: jobqueue= name -> dask_jobqueue class
JOBQUEUE = {
    "slurm": "SLURMCluster",
    "pbs": "PBSCluster",
    "lsf": "LSFCluster",
    "sge": "SGECluster",
    "htcondor": "HTCondorCluster",
    "oar": "OARCluster",
    "moab": "MoabCluster",
}
#: Kept off the network and off the dashboard unless the user says otherwise.
_QUIET_SCHEDULER = {"dashboard": False, "dashboard_address": "127.0.0.1:0"}


@dataclass
class Connection:
    client: Any
    cluster: Any = None  # the cluster flowbridge built, closed at shutdown
    owns_client: bool = False
    offers: list[dict[str, float]] | None = None  # declared by flowbridge; None: ask the scheduler
    where: str = "the Dask cluster"
    direct: bool | None = None  # gather from the workers, not through the scheduler (None: the client's default)


def _worker_offer(threads: int, memory: int | None, extra: Mapping[str, float]) -> dict[str, float]:
    offer: dict[str, float] = {"CPU": float(threads)}
    if memory:
        offer["MEMORY"] = float(memory)
    offer.update({str(k): float(v) for k, v in extra.items()})
    return offer


async def local_cluster(run_dir: Path, worker_resources: Mapping[str, float], options: dict[str, Any]) -> Connection:
    """A LocalCluster of worker processes on 127.0.0.1, sized to the machine, no dashboard."""
    from dask.system import CPU_COUNT
    from distributed.deploy.utils import nprocesses_nthreads
    from distributed.worker_memory import parse_memory_limit

    n_workers, threads = options.pop("n_workers", None), options.pop("threads_per_worker", None)
    if n_workers is None and threads is None:
        n_workers, threads = nprocesses_nthreads()
    elif n_workers is None:
        n_workers = max(1, CPU_COUNT // threads)
    elif threads is None:
        threads = max(1, math.ceil(CPU_COUNT / max(1, n_workers)))
    memory = parse_memory_limit(options.get("memory_limit", "auto"), threads, logger=_log)
    offer = _worker_offer(threads, memory, worker_resources)
    settings: dict[str, Any] = {
        "processes": True,
        "host": "127.0.0.1",
        "dashboard_address": None,
        "local_directory": str(run_dir),
        **options,
        "n_workers": n_workers,
        "threads_per_worker": threads,
        "resources": dict(offer),
        "asynchronous": True,
        "scheduler_kwargs": {
            **_QUIET_SCHEDULER,
            "local_directory": str(run_dir),
            **options.get("scheduler_kwargs", {}),
        },
    }
    cluster = LocalCluster(**settings)  # asynchronous: starts when awaited
    try:
        await cluster
        client = await Client(cluster, asynchronous=True)
    except BaseException:
        await close_cluster(cluster)
        raise
    _log.info("started a LocalCluster of %d x %d threads at %s", n_workers, threads, cluster.scheduler_address)
    # Same host: values come straight from the workers instead of through the scheduler.
    return Connection(client, cluster, True, [offer] * n_workers, "flowbridge's LocalCluster", direct=True)


async def jobqueue_cluster(
    kind: str,
    run_dir: Path,
    jobs: int | None,
    adapt: tuple[int, int] | None,
    worker_resources: Mapping[str, float],
    options: dict[str, Any],
) -> Connection:
    """A dask-jobqueue cluster whose workers run in batch jobs; scaled (or adaptive) and owned."""
    try:
        import dask_jobqueue
    except ImportError as exc:
        raise BackendUnavailable(
            f'jobqueue={kind!r} needs dask-jobqueue; pip install "flowbridge[dask-jobqueue]" ({exc})'
        ) from exc
    cls = getattr(dask_jobqueue, JOBQUEUE[kind])
    config = getattr(cls.job_cls, "config_name", None) or kind
    for name, default in (("cores", 1), ("memory", "1GB")):
        if options.get(name) is None and dask.config.get(f"jobqueue.{config}.{name}", None) is None:
            options[name] = default
            _log.info("jobqueue=%r: no %s= given, using %r per job", kind, name, default)
    cores = int(options.get("cores") or dask.config.get(f"jobqueue.{config}.cores"))
    memory = parse_bytes(options.get("memory") or dask.config.get(f"jobqueue.{config}.memory"))
    processes = options.get("processes") or dask.config.get(f"jobqueue.{config}.processes", None)
    if processes is None:
        from distributed.deploy.utils import nprocesses_nthreads

        processes, _ = nprocesses_nthreads(cores)
    offer = _worker_offer(max(1, cores // processes), memory // processes, worker_resources)
    extra_args = list(
        options.get("worker_extra_args") or dask.config.get(f"jobqueue.{config}.worker-extra-args", None) or []
    )
    if any(str(a).startswith("--resources") for a in extra_args):
        raise TypeError("declare worker resources with worker_resources={...}, not --resources in worker_extra_args")
    extra_args += ["--resources", ",".join(f"{k}={v:g}" for k, v in offer.items())]
    scheduler_options = {**_QUIET_SCHEDULER, "local_directory": str(run_dir), **options.pop("scheduler_options", {})}
    if "interface" not in options and "host" not in scheduler_options and "interface" not in scheduler_options:
        options["interface"] = "lo"  # services listen on 127.0.0.1 unless configured
    settings: dict[str, Any] = {
        "log_directory": str(run_dir / "jobs"),
        "local_directory": str(run_dir),
        "python": sys.executable,
        **options,
        "worker_extra_args": extra_args,
        "scheduler_options": scheduler_options,
        "asynchronous": True,
    }
    os.makedirs(settings["log_directory"], exist_ok=True)
    cluster = cls(**settings)
    try:
        await cluster
        low, high = adapt if adapt is not None else (jobs or 1, jobs or 1)
        # adapt() also for a fixed size: it replaces a job that died (scancel, walltime),
        # which scale(jobs=N) does not.
        cluster.adapt(minimum_jobs=low, maximum_jobs=high)
        client = await Client(cluster, asynchronous=True)
    except BaseException:
        await close_cluster(cluster)
        raise
    _log.info("started a %s at %s, jobs %d..%d", type(cluster).__name__, cluster.scheduler_address, low, high)
    return Connection(client, cluster, True, [offer], f"flowbridge's {type(cluster).__name__}")


async def close_cluster(cluster: Any) -> None:
    """Close a cluster flowbridge built, its scheduler's scratch dir (in our run dir) included."""
    try:
        await cluster.close()
    finally:
        # An in-process scheduler purges its scratch dir only when garbage collected, maybe at
        # exit after the run dir is gone (and then logs an error): purge it now.
        workdir = getattr(getattr(cluster, "scheduler", None), "_workdir", None)
        if workdir is not None:
            workdir.release()


async def existing(address: str | None, scheduler_file: str | None, cluster: Any, client: Any) -> Connection:
    """A client on what the user brought; only a client flowbridge opened is closed at shutdown."""
    if client is not None:
        if client.asynchronous and client.status in ("newly-created", "connecting"):
            await client
        return Connection(client, where="your Dask cluster")
    if cluster is not None:
        security = getattr(cluster, "security", None)
        made = await Client(cluster.scheduler_address, security=security, asynchronous=True)
        return Connection(made, owns_client=True, where=f"your {type(cluster).__name__}")
    if scheduler_file is not None:
        made = await Client(scheduler_file=os.fspath(scheduler_file), asynchronous=True)
        return Connection(made, owns_client=True, where=f"the Dask cluster of {scheduler_file}")
    made = await Client(address, asynchronous=True)
    return Connection(made, owns_client=True, where=f"the Dask cluster at {address}")
