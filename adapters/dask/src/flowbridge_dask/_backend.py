"""DaskExecutionBackend: flowbridge tasks as Dask futures, on any Dask cluster."""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flowbridge import ConfigError, Resources, UnsupportedResource
from flowbridge.adapter import Adapter, Handle, TaskSpec
from flowbridge.toolkit.owned import Owned

from ._bridge import ClientBridge
from ._clusters import Connection, close_quickly, existing, jobqueue_cluster, kill_cluster_processes, local_cluster
from ._commands import run_tagged_command
from ._guard import describe, in_bootstrapping_worker, reruns_main, unguarded_line
from ._handles import DaskHandle
from ._options import check_options, check_timeout
from ._resources import SUPPORTED, refusal, satisfiable, to_dask
from ._runner import pack, run_function

_log = logging.getLogger("flowbridge.dask")
_RESOURCE_POLL = 1.0  # seconds between looks for a capable worker while a cluster has none
#: shutdown(cancel=True) returns within this many seconds whatever runs (the engine allows ~8).
CANCEL_BUDGET = 6.5
_KILL_WAIT = 3.0  # of which, at most, for killing the commands on the workers
_BUSY_WORKER_WAIT = 1.5  # then, for a worker of flowbridge's cluster to close before it is killed


class DaskExecutionBackend(Adapter):
    """Runs tasks on Dask: a LocalCluster it owns, your scheduler/cluster/client, or batch jobs.

    ``DaskExecutionBackend()`` builds a LocalCluster of worker processes (127.0.0.1,
    no dashboard) sized to the machine; ``address=``, ``scheduler_file=``,
    ``cluster=`` or ``client=`` reuse yours; ``jobqueue="slurm"`` (or pbs, lsf, sge,
    htcondor, oar, moab) with ``jobs=N`` or ``adapt=(min, max)`` builds a
    dask-jobqueue cluster. ``cluster_options`` go to the cluster flowbridge builds
    (checked against Dask's signatures: a typo is a ConfigError naming it).
    ``connect_timeout`` bounds connecting to your scheduler (and waiting for its
    scheduler file). Shutdown closes only what flowbridge created; cancelling a
    task, its ``timeout=`` and ``shutdown(cancel=True)`` kill the command of an
    executable task with every process it started, on any worker. Values stay on the workers until
    awaited; a dependent on this backend gets its upstream's Dask future, resolved
    on the cluster.
    """

    name = "dask"
    capabilities = frozenset(
        {
            "functions",
            "executables",
            "async_functions",
            "native_dependencies",
            "remote_results",
            "worker_lost",
        }
    )
    supported_resources = SUPPORTED

    def __init__(self, options: Mapping[str, Any] | None = None, /, **keywords: Any) -> None:
        """Options as keywords, or as one dict (``DaskExecutionBackend({"n_workers": 2})``, asyncflow 0.1's form)."""
        if options is not None:
            if not isinstance(options, Mapping):
                raise TypeError(
                    f"DaskExecutionBackend({options!r}): the one positional argument is a dict of options; "
                    f"or pass them as keywords, e.g. DaskExecutionBackend(n_workers=2)"
                )
            twice = sorted(set(options) & set(keywords))
            if twice:
                raise TypeError(f"DaskExecutionBackend: {', '.join(twice)} given both in the dict and as keywords")
            keywords = {**options, **keywords}
        self._setup(**keywords)

    def _setup(
        self,
        *,
        address: str | None = None,
        scheduler_file: str | None = None,
        client: Any = None,
        cluster: Any = None,
        jobqueue: str | None = None,
        jobs: int | None = None,
        adapt: tuple[int, int] | list[int] | None = None,
        worker_resources: Mapping[str, float] | None = None,
        resource_timeout: float | None = 300.0,
        connect_timeout: float = 10.0,
        keep_run_dir: bool = False,
        name: str | None = None,
        **cluster_options: Any,
    ) -> None:
        self._named(name)
        self.source, jobqueue, adapt = check_options(
            address, scheduler_file, client, cluster, jobqueue, jobs, adapt, worker_resources, cluster_options
        )
        self.connect_timeout: float = check_timeout("connect_timeout", connect_timeout, optional=False)  # type: ignore[assignment]
        self._address, self._scheduler_file = address, scheduler_file
        self._user_client, self._user_cluster = client, cluster
        self._jobqueue, self._jobs, self._adapt = jobqueue, jobs, adapt
        self._worker_resources = {str(k): float(v) for k, v in (worker_resources or {}).items()}
        self._options = dict(cluster_options)
        self.resource_timeout = check_timeout("resource_timeout", resource_timeout, optional=True)
        self.keep_run_dir = keep_run_dir
        self.run_dir: Path | None = None
        self._own = Owned("dask", keep_run_dir=keep_run_dir)  # what start makes, released by shutdown
        self._conn: Connection | None = None
        self._bridge: ClientBridge | None = None
        self._offers: list[dict[str, float]] = []
        self._token = uuid.uuid4().hex[:16]  # two engines on one cluster never share a key
        self._seq = itertools.count()
        # FLOWBRIDGE_OWNER of the commands this backend starts (the run dir once it owns one).
        self._owner = f"flowbridge-dask-{os.getpid()}-{self._token}"

    def __repr__(self) -> str:
        where = self._conn.where if self._conn is not None else self.source
        return f"<DaskExecutionBackend {where}>"

    @property
    def client(self) -> Any:
        """The Dask client tasks go through (None before start)."""
        return self._conn.client if self._conn is not None else None

    @property
    def cluster(self) -> Any:
        """The cluster flowbridge built (None when you brought the cluster, or before start)."""
        return self._conn.cluster if self._conn is not None else None

    # -- lifetime ------------------------------------------------------------------

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        if self.source == "local" and self._options.get("processes", True):
            self._check_main_guard()
        if self.source in ("local", "jobqueue"):
            self.run_dir = self._own.run_dir()
            self.owner_tag = self._owner = str(self.run_dir)
            # A reaper kills what carries our tag and removes the run dir if this process dies without shutdown.
            self._own.tag(self._owner)
            try:
                if self.source == "local":
                    conn = await local_cluster(self.run_dir, self._owner, self._worker_resources, dict(self._options))
                else:
                    kind = self._jobqueue or "slurm"
                    conn = await jobqueue_cluster(
                        kind,
                        self.run_dir,
                        self._owner,
                        self._jobs,
                        self._adapt,
                        self._worker_resources,
                        dict(self._options),
                    )
            except BaseException:
                self._own.release()
                raise
        else:  # the commands it starts on your workers (on this host) are still its own
            self.owner_tag = self._owner
            self._own.tag(self._owner, reaper=False)
            conn = await existing(
                self._address, self._scheduler_file, self._user_cluster, self._user_client, self.connect_timeout
            )
        self._conn = conn
        self._bridge = ClientBridge(conn.client, loop, conn.direct)
        if conn.offers is None:
            self._offers = await self._bridge.offers()

    def _check_main_guard(self) -> None:
        """Refuse, before any process starts, a script that each spawned worker would re-run."""
        if in_bootstrapping_worker():
            # This is a worker process re-running the main script: it cannot become a worker.
            # Leave quietly; the driver's error says why.
            os._exit(3)
        script = reruns_main()
        line = unguarded_line(script) if script is not None else None
        if script is not None and line is not None:
            raise ConfigError(describe(script, line))

    async def shutdown(self, *, cancel: bool = True) -> None:
        """Close what flowbridge built; with ``cancel=True`` kill running commands first, within ~7 s.

        A running Python function cannot be stopped on Dask: its worker process is
        closed (and killed after a few seconds) when the cluster is flowbridge's, and
        left running to its end on a cluster you brought.
        """
        conn, bridge = self._conn, self._bridge
        if conn is None or bridge is None:
            self._own.release()
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (CANCEL_BUDGET if cancel else 120.0)
        inflight = list(bridge.inflight.values())
        bridge.inflight.clear()
        for handle in inflight:
            if cancel:
                handle.cancel()
            else:
                handle.forget()
        clean = False
        try:
            if cancel and not bridge.closed:
                # Every command this backend started, also those whose tasks already let go.
                await _bounded(bridge.kill_on_workers([], f"{self._owner}:"), min(_KILL_WAIT, deadline - loop.time()))
            await bridge.drain(timeout=max(0.1, min(2.0, deadline - loop.time())))
            if conn.owns_client:
                bridge.closed = True
                await _bounded(conn.client.close(), max(0.1, min(3.0, deadline - loop.time())))
            if conn.cluster is not None:
                left = max(0.1, deadline - loop.time())
                # cancel=True: a worker busy in a Python function gets 1.5 s, not Dask's ~4 s.
                clean = await close_quickly(conn.cluster, left, kill_after=_BUSY_WORKER_WAIT if cancel else None)
            else:
                clean = True
        finally:
            if conn.cluster is not None and not clean:
                kill_cluster_processes(conn.cluster)
            self._own.release()

    def kill(self) -> None:
        """Last resort: kill the worker processes (or scancel the jobs) and the commands flowbridge started."""
        conn = self._conn
        if conn is not None and conn.cluster is not None:
            kill_cluster_processes(conn.cluster)
        self._own.release()  # kill what still carries our tag on this host, stop the reaper, remove the run dir

    # -- tasks ---------------------------------------------------------------------

    def check_resources(self, task: TaskSpec) -> None:
        super().check_resources(task)
        if task.resources is not None:
            to_dask(task.resources, _label(task))

    def submit(self, task: TaskSpec) -> Handle:
        conn, bridge = self._conn, self._bridge
        if conn is None or bridge is None:
            raise RuntimeError("DaskExecutionBackend.submit before start(); use it through a WorkflowEngine")
        request = self._placement(task.resources, task) if task.resources is not None else None
        key = f"{task.name}-{task.uid}-{task.attempt}-{self._token}{next(self._seq):x}"
        options: dict[str, Any] = {"key": key, "pure": False}
        if request:
            options["resources"] = request
        if task.kind == "function":
            payload, natives = pack(task.func, task.args, task.kwargs)  # type: ignore[arg-type]
            future = conn.client.submit(run_function, payload, *natives, **options)
        else:
            tag = f"{self._owner}:{key}"
            future = conn.client.submit(run_tagged_command, task.command, tag, self._owner, **options)
        handle = DaskHandle(bridge, key, future, tag if task.kind != "function" else None)
        if request and not satisfiable(request, self._offers if conn.offers is None else conn.offers):
            bridge.spawn(self._find_capable_worker(handle, request, _label(task)))
        return handle

    def native(self, handle: Handle) -> Any:
        return handle.dask_future if isinstance(handle, DaskHandle) else None

    def _placement(self, resources: Resources, task: TaskSpec) -> dict[str, float] | None:
        """The Dask resources of a task; UnsupportedResource when this cluster can never run it."""
        Adapter.check_resources(self, task)  # fields this backend cannot map at all
        request = to_dask(resources, _label(task))
        offers = self._conn.offers  # type: ignore[union-attr]
        if request and offers is not None and not satisfiable(request, offers):
            raise refusal(_label(task), request, offers, self._conn.where)  # type: ignore[union-attr]
        return request or None

    async def _find_capable_worker(self, handle: DaskHandle, request: dict[str, float], label: str) -> None:
        """A user's cluster: ask the scheduler; refuse once workers exist and none can, or after a while."""
        loop = asyncio.get_running_loop()
        deadline = None if self.resource_timeout is None else loop.time() + self.resource_timeout
        while not handle.done():
            self._offers = offers = await self._bridge.offers()  # type: ignore[union-attr]
            if satisfiable(request, offers):
                return
            if offers or (deadline is not None and loop.time() >= deadline):
                error = refusal(label, request, offers, self._conn.where)  # type: ignore[union-attr]
                if not offers:
                    error = UnsupportedResource(f"{error} (no worker joined within {self.resource_timeout} s)")
                handle.fail(error)
                return
            await asyncio.sleep(_RESOURCE_POLL)


async def _bounded(awaitable: Any, timeout: float) -> bool:
    """Await with a time limit; False (logged) when it failed or took longer."""
    try:
        await asyncio.wait_for(awaitable, max(0.05, timeout))
    except TimeoutError:
        _log.warning("a Dask shutdown step took longer than %.1f s; going on", timeout)
        return False
    except Exception as exc:
        _log.warning("a Dask shutdown step failed: %r", exc)
        return False
    return True


def _label(task: TaskSpec) -> str:
    return f"{task.name} ({task.uid})"
