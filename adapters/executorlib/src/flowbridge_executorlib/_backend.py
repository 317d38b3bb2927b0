"""ExecutorlibExecutionBackend: flowbridge tasks on executorlib, one node, srun in a job, or sbatch per task."""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import shutil
import threading
import uuid
import warnings
from functools import partial
from pathlib import Path
from typing import Any

from flowbridge import BackendUnavailable, worker
from flowbridge.adapter import Adapter, TaskSpec
from flowbridge.toolkit import codec, procs
from flowbridge.toolkit.blocking import off_loop
from flowbridge.toolkit.checks import cannot_honour
from flowbridge.toolkit.owned import Owned

from ._handle import Handle, submit_block
from ._resources import installed, resource_dict

_log = logging.getLogger("flowbridge.executorlib")

KINDS = ("single_node", "slurm_cluster", "slurm_job", "flux_job", "flux_cluster")
#: options each kind takes besides kind= and cache_directory=
OPTIONS: dict[str, frozenset[str]] = {
    "single_node": frozenset({"max_workers", "max_cores", "openmpi_oversubscribe", "hostname_localhost"}),
    "slurm_job": frozenset(
        {"max_workers", "max_cores", "openmpi_oversubscribe", "hostname_localhost", "pmi_mode", "slurm_cmd_args"}
    ),
    "slurm_cluster": frozenset({"max_workers", "max_cores", "resource_dict", "pysqa_config_directory", "pmi_mode"}),
    "flux_job": frozenset({"max_workers", "max_cores", "resource_dict", "pmi_mode", "flux_executor"}),
    "flux_cluster": frozenset({"max_workers", "max_cores", "resource_dict", "pysqa_config_directory", "pmi_mode"}),
}
SHUTDOWN_BUDGET = 6.0  # seconds shutdown(cancel=True) may spend on executorlib before it kills what is left


class ExecutorlibExecutionBackend(Adapter):
    """Runs tasks on executorlib: ``kind="single_node"`` (default), ``"slurm_job"``, ``"slurm_cluster"``, flux.

    * ``single_node``: a block-allocated pool of worker processes for plain tasks
      (``max_workers``, default one per CPU), one process per task for tasks that ask
      for resources (MPI ranks, threads), so the request is honoured.
    * ``slurm_job``: the same with every worker started by ``srun`` (inside your
      allocation, or each in its own when there is none).
    * ``slurm_cluster``: one ``sbatch`` job per task through pysqa (``executorlib[cluster]``).
    * ``flux_job`` / ``flux_cluster``: executorlib's Flux executors (needs flux-core; untested).
    * ``executor=``: your own executorlib executor, used as it is and never shut down.

    ``cache_directory=`` keeps every function result in that folder (``executorlib[cache]``)
    and returns it without running the body again, across engines and runs.
    """

    name = "executorlib"
    capabilities = frozenset(
        {
            "functions",
            "executables",
            "async_functions",
            "worker_lost",
        }
    )
    # The kind has the last word: see check_resources.
    supported_resources = frozenset({"cores", "gpus", "threads", "ranks", "memory", "walltime", "extra"})

    def __init__(
        self,
        executor: Any = None,
        *,
        kind: str = "single_node",
        cache_directory: str | os.PathLike[str] | None = None,
        name: str | None = None,
        **executor_options: Any,
    ) -> None:
        self._named(name)
        if executor is not None:
            if not callable(getattr(executor, "submit", None)):
                raise TypeError(f"executor= takes an executorlib executor, not {type(executor).__name__}")
            if kind != "single_node" or cache_directory is not None or executor_options:
                raise TypeError(
                    "kind=, cache_directory= and executor options shape an executor flowbridge builds; "
                    "yours is already made (set them when you create it)"
                )
        elif kind not in KINDS:
            raise ValueError(f"kind={kind!r} is not an executorlib kind; use one of {', '.join(KINDS)}")
        else:
            unknown = sorted(set(executor_options) - OPTIONS[kind])
            if unknown:
                raise TypeError(
                    f"ExecutorlibExecutionBackend(kind={kind!r}) got unknown option(s) {', '.join(unknown)}; "
                    f"it takes executor=, kind=, cache_directory= and {', '.join(sorted(OPTIONS[kind]))}"
                )
            _check_installed(kind, cache_directory)
        self.executor = executor
        self.kind = "executor" if executor is not None else kind
        self._rkind = _kind_of(executor) if executor is not None else kind  # what resources can be honoured
        self.cache_directory = None if cache_directory is None else os.path.abspath(os.fspath(cache_directory))
        self.options = dict(executor_options)
        self.run_dir: Path | None = None
        self._block: Any = None
        self._per_task: Any = None
        self._owned: Any = None  # an executorlib executor flowbridge built (slurm_cluster, flux)
        self._own = Owned("executorlib")  # run dir, owner tag, reaper, jobs: released at the end
        self._deaths: Any = None
        self._live: set[Handle] = set()
        self._pool_size = 0
        self._jobs: dict[str, Handle] = {}  # slurm_cluster: live handles by task uid
        self._watcher: asyncio.Task[None] | None = None
        self._token = uuid.uuid4().hex[:12]  # tags this adapter's commands when it has no run dir (your executor)
        self._closed = False

    def __repr__(self) -> str:
        if self.executor is not None:
            return f"<ExecutorlibExecutionBackend your {type(self.executor).__name__}>"
        return f"<ExecutorlibExecutionBackend kind={self.kind!r}>"

    # -- lifetime ------------------------------------------------------------------------

    async def start(self) -> None:
        if self._closed:
            raise RuntimeError("this ExecutorlibExecutionBackend has been shut down; make a new one")
        if self.executor is not None:
            return
        # ship_by_value learns once (a subprocess, ~20 ms) what a fresh worker can import: off the loop
        await off_loop(codec.ship_by_value, worker.timed_call)
        self.run_dir = self._own.run_dir()
        self.owner_tag = str(self.run_dir)
        try:
            self._own.tag(self.owner_tag)
            if self.cache_directory is not None:
                os.makedirs(self.cache_directory, exist_ok=True)
            if self.kind in ("single_node", "slurm_job"):
                from ._schedulers import Deaths, pool_size, schedulers

                self._deaths = Deaths()
                self._own.callback(self._deaths.close)
                self._pool_size = pool_size(self.options)
                self._block, self._per_task = schedulers(
                    self.kind, self.owner_tag, self.run_dir, self._deaths, self.cache_directory, self.options
                )
            else:
                self._owned = _public_executor(self.kind, self.run_dir, self.cache_directory, self.options)
                if self.kind == "slurm_cluster":
                    from ._slurm import cancel_jobs_under

                    self._own.callback(cancel_jobs_under, self.run_dir)
                    self._watcher = asyncio.ensure_future(self._watch_jobs())
        except BaseException:
            self.kill()
            raise

    async def shutdown(self, *, cancel: bool = True) -> None:
        if self._closed:
            return
        self._closed = True
        if self._watcher is not None:
            self._watcher.cancel()
        live = list(self._live)
        if cancel:
            for handle in live:
                handle.cancel()
        elif live:
            await asyncio.gather(*(asyncio.wrap_future(h) for h in live), return_exceptions=True)
        if self.executor is not None:
            return  # the user's executor: left open
        # Nothing of ours runs any more (cancelled, or awaited above): executorlib's own graceful stop
        # would wait for each idle worker to finish booting (seconds); stop the queues, kill the workers.
        stops = [s for s in (self._block, self._per_task, self._owned) if s is not None]
        try:
            for scheduler in stops:
                call = partial(scheduler.shutdown, wait=False, cancel_futures=True)
                await off_loop(call, timeout=SHUTDOWN_BUDGET, name="flowbridge-executorlib-stop")
        except TimeoutError:
            _log.warning("executorlib did not shut down within %.0f s; killing its workers", SHUTDOWN_BUDGET)
        finally:
            await off_loop(self._own.release, timeout=10)  # last made first: jobs, workers, reaper, run dir

    def kill(self) -> None:
        """Kill every worker and command this adapter started, cancel its jobs, remove its run dir."""
        self._closed = True
        for handle in list(self._live):
            handle.cancel()
        self._own.release()

    # -- tasks ---------------------------------------------------------------------------

    def check_resources(self, task: TaskSpec) -> None:
        if task.resources is not None:
            resource_dict(task.resources, self._rkind, _label(task))

    def submit(self, task: TaskSpec) -> Handle:
        if self._closed:
            raise RuntimeError(f"the executorlib backend is shut down; task {_label(task)} was not submitted")
        label = _label(task)
        rd = resource_dict(task.resources, self._rkind, label) if task.resources is not None else {}
        if self.kind == "slurm_cluster":
            from ._slurm import with_job_name

            assert self.run_dir is not None
            rd = with_job_name(rd, self.run_dir, task.uid, task.attempt, self.cache_directory is not None)
        kill = None
        if task.kind == "function":
            # executorlib pickles the call with cloudpickle itself: __main__ functions and closures
            # travel by value; modules a fresh worker cannot import are registered for that first.
            codec.ship_by_value(task.func)
            fn: Any = worker.timed_call
            args: tuple[Any, ...] = (task.func, tuple(task.args), dict(task.kwargs))
            kwargs: dict[str, Any] = {}
        else:
            tag = f"{self.owner_tag or 'executorlib-' + self._token}:{task.uid}:{task.attempt}"
            fn, args = worker.timed_run_command, (task.command,)
            kwargs = {"task": tag, "owner": self.owner_tag}
            kill = partial(procs.reap, {procs.TASK_ENV: tag})
        handle = Handle(label, self._live, self._why, kill)
        try:
            if task.kind == "executable" and self.kind == "single_node":
                # a command on this node: run it from here (no worker round trip, never cached)
                kwargs["cwd"] = _command_cwd(rd, label)
                inner = _on_thread(fn, args, kwargs)
            elif self.executor is not None:
                inner = (
                    self.executor.submit(fn, *args, resource_dict=rd, **kwargs)
                    if rd
                    else self.executor.submit(fn, *args, **kwargs)
                )
            elif self._owned is not None:
                with warnings.catch_warnings():  # executorlib cannot validate pysqa's keys (job_name, partition)
                    warnings.simplefilter("ignore", UserWarning)
                    inner = self._owned.submit(fn, *args, resource_dict=rd, **kwargs)
                self._jobs[task.uid] = handle
            elif rd:
                inner = self._per_task.submit(fn, *args, resource_dict=rd, **kwargs)
            else:
                if self._deaths.pool_deaths >= self._pool_size:
                    self._renew_pool()
                inner = submit_block(self._block, fn, args, kwargs)
        except BaseException:
            self._live.discard(handle)
            raise
        handle.follow(inner)
        return handle

    async def _watch_jobs(self) -> None:
        """Fail a task within seconds when its SLURM job was cancelled or died (executorlib takes 30 s)."""
        from flowbridge import WorkerLost

        from ._slurm import POLL, ended_jobs

        assert self.run_dir is not None
        while not self._closed:
            await asyncio.sleep(POLL)
            for uid, handle in list(self._jobs.items()):
                if handle.done():
                    self._jobs.pop(uid, None)
            if not self._jobs:
                continue
            for uid, (job, state) in (await off_loop(ended_jobs, self.run_dir, timeout=30)).items():
                ended = self._jobs.pop(uid, None)
                if ended is not None and not ended.done():
                    ended.fail(WorkerLost(f"task {ended.label}: its SLURM job {job} ended {state} without a result"))

    def _renew_pool(self) -> None:
        """Every worker of the pool died (tasks that killed them failed with WorkerLost): start a new pool."""
        from ._schedulers import schedulers

        _log.warning("all %d executorlib workers died; starting a new pool", self._pool_size)
        old = self._block
        with self._deaths.lock:
            self._deaths.pool_deaths = 0
        assert self.run_dir is not None and self.owner_tag is not None
        self._block, _ = schedulers(
            self.kind, self.owner_tag, self.run_dir, self._deaths, self.cache_directory, self.options, pool_only=True
        )
        threading.Thread(target=old.shutdown, kwargs={"wait": False}, daemon=True).start()

    def _why(self, future: Any) -> str | None:
        return self._deaths.why(future) if self._deaths is not None else None


def _command_cwd(rd: dict[str, Any], label: str) -> str | None:
    """The working directory of a command on one node; other resources are the command's own business."""
    other = sorted(set(rd) - {"cwd"})
    if other:
        raise cannot_honour(
            "executorlib",
            label,
            ", ".join(other),
            "kind='single_node' runs a command on this node as it is",
            "put the count in the command (e.g. mpirun -n 4 ..., OMP_NUM_THREADS=2 ...), or use kind='slurm_job'",
        )
    cwd = rd.get("cwd")
    if cwd is not None:
        os.makedirs(cwd, exist_ok=True)
    return cwd


def _kind_of(executor: Any) -> str:
    """The kind of a user's executorlib executor, for what its resource_dict can honour."""
    names = {
        "SingleNodeExecutor": "single_node",
        "SlurmJobExecutor": "slurm_job",
        "SlurmClusterExecutor": "slurm_cluster",
        "FluxJobExecutor": "flux_job",
        "FluxClusterExecutor": "flux_cluster",
    }
    for cls in type(executor).__mro__:
        if cls.__name__ in names:
            return names[cls.__name__]
    return "executor"


def _label(task: TaskSpec) -> str:
    return f"{task.name} ({task.uid})"


def _on_thread(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> concurrent.futures.Future[Any]:
    """``fn(*args, **kwargs)`` on a daemon thread (a command: killed by its tag when cancelled)."""
    future: concurrent.futures.Future[Any] = concurrent.futures.Future()
    future.set_running_or_notify_cancel()

    def run() -> None:
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            if not future.done():
                future.set_exception(exc)
        else:
            if not future.done():
                future.set_result(result)

    threading.Thread(target=run, name="flowbridge-executorlib-command", daemon=True).start()
    return future


def _check_installed(kind: str, cache_directory: Any) -> None:
    """BackendUnavailable, naming what to install, for what executorlib would otherwise hang on."""
    if cache_directory is not None and not installed("h5py"):
        raise BackendUnavailable(
            'cache_directory= needs h5py, which is not installed; pip install "flowbridge[executorlib]" '
            "(without it executorlib never resolves a cached task)"
        )
    if kind.startswith("flux") and not installed("flux"):
        raise BackendUnavailable(
            f"kind={kind!r} needs Flux (flux-core and its Python bindings, module 'flux'), which is not installed "
            f"here; install flux-core (e.g. spack install flux-core, or conda install -c conda-forge flux-core) "
            f"and run inside a Flux instance, or use kind='slurm_job' / 'single_node'"
        )
    if kind == "slurm_cluster" and not installed("pysqa"):
        raise BackendUnavailable(
            "kind='slurm_cluster' needs pysqa, which is not installed; pip install \"flowbridge[executorlib]\""
        )
    if kind == "slurm_cluster" and not installed("h5py"):
        raise BackendUnavailable(
            "kind='slurm_cluster' passes tasks through files and needs h5py, which is not installed; "
            'pip install "flowbridge[executorlib]"'
        )
    needs = {"slurm_job": "srun", "slurm_cluster": "sbatch"}.get(kind)
    if needs is not None and shutil.which(needs) is None:
        raise BackendUnavailable(f"kind={kind!r} needs SLURM's {needs}, which is not on PATH here")


def _public_executor(kind: str, run_dir: Path, cache_directory: str | None, options: dict[str, Any]) -> Any:
    """executorlib's own executor for the kinds that hand work to a batch system (sbatch, flux)."""
    import executorlib

    common = {k: v for k, v in options.items() if k in ("max_workers", "max_cores", "resource_dict", "pmi_mode")}
    if kind == "slurm_cluster":
        from ._slurm import cluster_executor

        return cluster_executor(run_dir, cache_directory, options)
    if kind == "flux_job":
        if "flux_executor" in options:
            common["flux_executor"] = options["flux_executor"]
        return executorlib.FluxJobExecutor(cache_directory=cache_directory, hostname_localhost=True, **common)
    return executorlib.FluxClusterExecutor(
        cache_directory=cache_directory or str(run_dir / "jobs"),
        pysqa_config_directory=options.get("pysqa_config_directory"),
        **common,
    )
