"""DaskExecutionBackend: flowbridge tasks as Dask futures, on any Dask cluster."""

from __future__ import annotations

import asyncio
import itertools
import logging
import shutil
import uuid
from collections.abc import Mapping
from functools import partial
from pathlib import Path
from typing import Any

from flowbridge import Resources, UnsupportedResource, WorkerLost
from flowbridge.adapter import Adapter, Handle, Remote, TaskSpec, make_run_dir
from flowbridge.worker import run_command

from ._bridge import ClientBridge
from ._clusters import Connection, close_cluster, existing, jobqueue_cluster, local_cluster
from ._handles import DaskHandle, outcome
from ._options import check_options
from ._resources import SUPPORTED, refusal, satisfiable, to_dask
from ._runner import pack, run_function

_log = logging.getLogger("flowbridge.dask")
_RESOURCE_POLL = 1.0  # seconds between looks for a capable worker while a cluster has none


class DaskExecutionBackend(Adapter):
    """Runs tasks on Dask: a LocalCluster it owns, your scheduler/cluster/client, or batch jobs.

    ``DaskExecutionBackend()`` builds a LocalCluster of worker processes (127.0.0.1,
    no dashboard) sized to the machine; ``address=``, ``scheduler_file=``,
    ``cluster=`` or ``client=`` reuse yours; ``jobqueue="slurm"`` (or pbs, lsf, sge,
    htcondor, oar, moab) with ``jobs=N`` or ``adapt=(min, max)`` builds a
    dask-jobqueue cluster. ``cluster_options`` go to the cluster flowbridge builds.
    Shutdown closes only what flowbridge created. Values stay on the workers until
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
            "resources.cores",
            "resources.gpus",
            "resources.memory",
            "worker_lost",
        }
    )
    supported_resources = SUPPORTED

    def __init__(
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
        keep_run_dir: bool = False,
        **cluster_options: Any,
    ) -> None:
        self.source, jobqueue, adapt = check_options(
            address, scheduler_file, client, cluster, jobqueue, jobs, adapt, worker_resources, cluster_options
        )
        self._address, self._scheduler_file = address, scheduler_file
        self._user_client, self._user_cluster = client, cluster
        self._jobqueue, self._jobs, self._adapt = jobqueue, jobs, adapt
        self._worker_resources = {str(k): float(v) for k, v in (worker_resources or {}).items()}
        self._options = dict(cluster_options)
        self.resource_timeout = resource_timeout
        self.keep_run_dir = keep_run_dir
        self.run_dir: Path | None = None
        self._conn: Connection | None = None
        self._bridge: ClientBridge | None = None
        self._offers: list[dict[str, float]] = []
        self._inflight: dict[str, DaskHandle] = {}
        self._token = uuid.uuid4().hex[:16]  # two engines on one cluster never share a key
        self._seq = itertools.count()

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
        if self.source in ("local", "jobqueue"):
            self.run_dir = make_run_dir("dask")
            try:
                if self.source == "local":
                    conn = await local_cluster(self.run_dir, self._worker_resources, dict(self._options))
                else:
                    kind = self._jobqueue or "slurm"
                    conn = await jobqueue_cluster(
                        kind, self.run_dir, self._jobs, self._adapt, self._worker_resources, dict(self._options)
                    )
            except BaseException:
                self._remove_run_dir()
                raise
        else:
            conn = await existing(self._address, self._scheduler_file, self._user_cluster, self._user_client)
        self._conn = conn
        self._bridge = ClientBridge(conn.client, loop, conn.direct)
        if conn.offers is None:
            self._offers = await self._bridge.offers()

    async def shutdown(self, *, cancel: bool = True) -> None:
        conn, bridge = self._conn, self._bridge
        if conn is None or bridge is None:
            self._remove_run_dir()
            return
        inflight, self._inflight = list(self._inflight.values()), {}
        for handle in inflight:
            if cancel:
                handle.cancel()
            elif handle.watcher is not None:
                handle.watcher.cancel()
        await bridge.drain(timeout=10)
        try:
            if conn.owns_client:
                bridge.closed = True
                await conn.client.close()
            if conn.cluster is not None:
                await close_cluster(conn.cluster)
        finally:
            self._remove_run_dir()

    def _remove_run_dir(self) -> None:
        if self.run_dir is not None and not self.keep_run_dir:
            shutil.rmtree(self.run_dir, ignore_errors=True)

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
            future = conn.client.submit(run_command, task.command, **options)
        handle = DaskHandle(bridge.loop, key, future, self._cancel)
        self._inflight[key] = handle
        bridge.watch(handle, self._settle)
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
                if not handle.done():
                    error = refusal(label, request, offers, self._conn.where)  # type: ignore[union-attr]
                    if not offers:
                        error = UnsupportedResource(f"{error} (no worker joined within {self.resource_timeout} s)")
                    self._cancel(handle)
                    handle.set_exception(error)
                return
            await asyncio.sleep(_RESOURCE_POLL)

    def _settle(self, handle: DaskHandle) -> None:
        """The Dask future has an outcome: hand it to the engine (the value stays on the workers)."""
        self._inflight.pop(handle.key, None)
        future = handle.dask_future
        if handle.done() or future is None:
            return
        status, error = outcome(future)
        if status == "finished":
            handle.set_result(Remote(partial(self._bridge.fetch, future, handle.key)))  # type: ignore[union-attr]
        elif error is not None and (status == "error" or isinstance(error, WorkerLost)):
            handle.set_exception(error)
        else:
            handle.drop()

    def _cancel(self, handle: DaskHandle) -> None:
        self._inflight.pop(handle.key, None)
        if handle.watcher is not None:
            handle.watcher.cancel()
        if handle.dask_future is not None and self._bridge is not None:
            self._bridge.cancel(handle.dask_future)


def _label(task: TaskSpec) -> str:
    return f"{task.name} ({task.uid})"
