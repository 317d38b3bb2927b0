"""Where the Dask client comes from: a cluster flowbridge builds, or one the user brought.

Each maker returns a :class:`Connection` that says what flowbridge owns (and so
closes at shutdown) and, for clusters it built, which resources each worker
declares, so impossible requests are refused without asking the scheduler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import os
import shlex
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dask.utils import parse_bytes
from distributed import Client, LocalCluster

import dask
from flowbridge import BackendUnavailable, ConfigError, FlowbridgeError
from flowbridge.toolkit.procs import OWNER_ENV

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


def import_jobqueue() -> Any:
    """``import dask_jobqueue``, keeping the program's Ctrl-C handler.

    Importing it (its ``runner`` module) replaces the SIGINT handler of the whole
    program with ``sys.exit()``: Ctrl-C would then end a script with SystemExit and
    status 0 instead of KeyboardInterrupt. flowbridge puts the handler back (and,
    off the main thread, where ``signal.signal`` would fail the import, skips it).
    """
    if "dask_jobqueue" in sys.modules:
        return sys.modules["dask_jobqueue"]
    import signal

    if threading.current_thread() is threading.main_thread():
        saved = signal.getsignal(signal.SIGINT)
        try:
            import dask_jobqueue
        finally:
            if saved is not None:
                signal.signal(signal.SIGINT, saved)
        return dask_jobqueue
    real = signal.signal
    signal.signal = lambda *_: None
    try:
        import dask_jobqueue
    finally:
        signal.signal = real
    return dask_jobqueue


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


async def local_cluster(
    run_dir: Path, owner: str, worker_resources: Mapping[str, float], options: dict[str, Any]
) -> Connection:
    """A LocalCluster of worker processes on 127.0.0.1, sized to the machine, no dashboard.

    Its worker processes get ``FLOWBRIDGE_OWNER=owner`` in their environment (so every
    process they start carries it) and ignore SIGINT: they share the driver's process
    group, and a terminal's Ctrl-C is the driver's to handle.
    """
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
    if not settings["processes"] and "protocol" not in options:
        # Dask's default for threads in this process is inproc://, which takes no host; without
        # one its workers' HTTP servers bind every interface. TCP on loopback instead.
        settings["protocol"] = "tcp://"
    if settings["processes"]:
        settings["env"] = {**(options.get("env") or {}), OWNER_ENV: owner}
        preload = options.get("preload") or []
        # By file, not module name: a worker then imports neither flowbridge nor this package to start.
        ours = str(Path(__file__).with_name("_preload.py"))
        settings["preload"] = [*([preload] if isinstance(preload, str) else preload), ours]
    cluster = LocalCluster(**settings)  # asynchronous: starts when awaited
    try:
        with _quiet("distributed"):  # a worker that cannot start makes Dask log pages of tracebacks
            await cluster
        client = await Client(cluster, asynchronous=True)
    except BaseException as exc:
        await close_quickly(cluster)
        if isinstance(exc, Exception) and not isinstance(exc, FlowbridgeError):
            raise _start_failure(exc, bool(settings["processes"]))  # its cause: the root error
        raise
    _log.info("started a LocalCluster of %d x %d threads at %s", n_workers, threads, cluster.scheduler_address)
    # Same host: values come straight from the workers instead of through the scheduler.
    return Connection(client, cluster, True, [offer] * n_workers, "flowbridge's LocalCluster", direct=True)


async def jobqueue_cluster(
    kind: str,
    run_dir: Path,
    owner: str,
    jobs: int | None,
    adapt: tuple[int, int] | None,
    worker_resources: Mapping[str, float],
    options: dict[str, Any],
) -> Connection:
    """A dask-jobqueue cluster whose workers run in batch jobs; scaled (or adaptive) and owned."""
    try:
        dask_jobqueue = import_jobqueue()
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
    # The job's processes carry the owner tag: on this host, flowbridge's last-resort kill and
    # its reaper find them (scancel is what ends the jobs everywhere).
    prologue = list(
        options.get("job_script_prologue") or dask.config.get(f"jobqueue.{config}.job-script-prologue", None) or []
    )
    options["job_script_prologue"] = [*prologue, f"export {OWNER_ENV}={shlex.quote(owner)}"]
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
        await close_quickly(cluster)
        raise
    _log.info("started a %s at %s, jobs %d..%d", type(cluster).__name__, cluster.scheduler_address, low, high)
    return Connection(client, cluster, True, [offer], f"flowbridge's {type(cluster).__name__}")


class _Drop(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return False


@contextlib.contextmanager
def _quiet(name: str) -> Iterator[None]:
    """Drop what the handlers Dask installed on logger ``name`` would print, meanwhile.

    A filter, not a level: a cluster changes its handlers' levels itself while it starts.
    """
    drop = _Drop()
    handlers = [h for h in logging.getLogger(name).handlers if isinstance(h, logging.StreamHandler)]
    for handler in handlers:
        handler.addFilter(drop)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(drop)


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


async def close_quickly(cluster: Any, timeout: float = 5.0, kill_after: float | None = None) -> bool:
    """Close a cluster, bounded; False (its processes killed) when that failed or took longer.

    ``kill_after``: seconds after which the worker processes still there are killed
    while the close goes on (a worker busy in a Python function is otherwise given ~4 s).
    """
    closing = asyncio.ensure_future(close_cluster(cluster))
    try:
        if kill_after is not None and kill_after < timeout:
            done, _ = await asyncio.wait({closing}, timeout=kill_after)
            if not done:
                _log.info("Dask workers still closing after %.1f s: killing their processes", kill_after)
                kill_cluster_processes(cluster, jobs=False)
        await asyncio.wait_for(closing, max(0.1, timeout - (kill_after or 0)))
    except Exception as exc:
        _log.warning("flowbridge's Dask cluster did not close within %.1f s (%r): killing its processes", timeout, exc)
        kill_cluster_processes(cluster)
        return False
    return True


def worker_pids(cluster: Any) -> list[int]:
    """Pids of the worker processes a LocalCluster's nannies (in this process) started."""
    pids = []
    for worker in list(getattr(cluster, "workers", {}).values()):
        process = getattr(getattr(worker, "process", None), "process", None)  # Nanny -> WorkerProcess -> AsyncProcess
        pid = getattr(process, "pid", None)
        if isinstance(pid, int):
            pids.append(pid)
    return pids


def job_ids(cluster: Any) -> list[str]:
    """Batch job ids of a dask-jobqueue cluster's workers."""
    return [str(j.job_id) for j in list(getattr(cluster, "workers", {}).values()) if getattr(j, "job_id", None)]


def kill_cluster_processes(cluster: Any, jobs: bool = True) -> None:
    """Last resort, synchronous: SIGKILL a LocalCluster's worker processes, scancel a jobqueue's jobs."""
    import signal
    import subprocess

    from flowbridge.toolkit import procs

    procs.kill(worker_pids(cluster), signal.SIGKILL)
    if not jobs:
        return
    jobs_ = job_ids(cluster)
    command = getattr(getattr(cluster, "job_cls", None), "cancel_command", None)
    if jobs_ and command:
        try:
            subprocess.run([*shlex.split(command), *jobs_], capture_output=True, timeout=5, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            _log.warning("could not cancel batch jobs %s: %r", ", ".join(jobs_), exc)


def _root(exc: BaseException) -> BaseException:
    seen = {id(exc)}
    while True:
        nxt = exc.__cause__ or exc.__context__
        if nxt is None or id(nxt) in seen:
            return exc
        seen.add(id(nxt))
        exc = nxt


def _start_failure(exc: Exception, processes: bool) -> FlowbridgeError:
    """The first real error of a LocalCluster that did not start, with the usual fix."""
    from ._guard import FIX, reruns_main

    root = _root(exc)
    text = f"{type(root).__name__}: {root}".strip().splitlines()[0] if str(root).strip() else type(root).__name__
    message = f"Dask's LocalCluster did not start: {type(exc).__name__}: {exc} (first error: {text})"
    script = reruns_main() if processes else None
    if script is not None:
        message += f". Its worker processes re-run {script} as they start; if the workflow starts outside "
        message += f'`if __name__ == "__main__":`, {FIX}'
    error = FlowbridgeError(message)
    error.__cause__ = root
    return error


async def _connect(make: Any, what: str, timeout: float) -> Any:
    """``await Client(...)`` bounded; the client is closed when it could not connect."""
    client = make()
    try:
        await asyncio.wait_for(_awaited(client), timeout + 5)  # Client(timeout=) bounds the connect itself
    except (TimeoutError, OSError) as exc:
        await _close_client(client)
        raise ConfigError(
            f"cannot reach {what} within {timeout:g} s (connect_timeout={timeout:g}): {exc}; is the scheduler "
            f"running and the address right?"
        ) from None
    except BaseException:
        await _close_client(client)
        raise
    return client


async def _awaited(client: Any) -> Any:
    return await client


async def _close_client(client: Any) -> None:
    try:
        await asyncio.wait_for(client.close(), 5)
    except Exception as exc:
        _log.debug("closing a client that did not connect: %r", exc)


async def _wait_for_file(path: str, timeout: float) -> None:
    """A scheduler file may appear a moment after its scheduler starts: wait for it, bounded."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    if not os.path.isdir(os.path.dirname(os.path.abspath(path))):
        raise ConfigError(
            f"scheduler_file={path!r}: no such directory; pass the file that `dask scheduler --scheduler-file` writes"
        )
    while not os.path.exists(path):
        if loop.time() >= deadline:
            raise ConfigError(
                f"scheduler_file={path!r} does not exist (waited {timeout:g} s, connect_timeout={timeout:g}); "
                f"start the scheduler with `dask scheduler --scheduler-file {path}` first, or fix the path"
            )
        await asyncio.sleep(0.1)


async def existing(
    address: str | None, scheduler_file: str | None, cluster: Any, client: Any, connect_timeout: float = 10.0
) -> Connection:
    """A client on what the user brought; only a client flowbridge opened is closed at shutdown."""
    if client is not None:
        if client.asynchronous and client.status in ("newly-created", "connecting"):
            await client
        return Connection(client, where="your Dask cluster")
    if cluster is not None:
        security = getattr(cluster, "security", None)
        made = await _connect(
            lambda: Client(cluster.scheduler_address, security=security, asynchronous=True, timeout=connect_timeout),
            f"your {type(cluster).__name__} at {cluster.scheduler_address}",
            connect_timeout,
        )
        return Connection(made, owns_client=True, where=f"your {type(cluster).__name__}")
    if scheduler_file is not None:
        path = os.fspath(scheduler_file)
        await _wait_for_file(path, connect_timeout)
        made = await _connect(
            lambda: Client(scheduler_file=path, asynchronous=True, timeout=connect_timeout),
            f"the Dask scheduler of {path}",
            connect_timeout,
        )
        return Connection(made, owns_client=True, where=f"the Dask cluster of {scheduler_file}")
    made = await _connect(
        lambda: Client(address, asynchronous=True, timeout=connect_timeout),
        f"the Dask scheduler at {address}",
        connect_timeout,
    )
    return Connection(made, owns_client=True, where=f"the Dask cluster at {address}")
