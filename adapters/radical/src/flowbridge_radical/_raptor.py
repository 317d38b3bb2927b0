"""The function path: the RAPTOR master that function tasks go to, its workers, a function task's description.

A RAPTOR master and its workers are pilot tasks themselves. The backend starts one
master with ``raptor_workers`` workers on its pilot (``raptor=None``), uses the
user's master (``raptor=master``), or runs no functions (``raptor=False``). When the
master (or a worker this backend started) ends, every function task still to run
fails with WorkerLost. What runs inside the worker is :mod:`flowbridge_radical._remote`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flowbridge import WorkerLost
from flowbridge.adapter import TaskSpec
from flowbridge.toolkit.checks import cannot_honour

from . import _remote, _tasks


class Raptor:
    """The RAPTOR master function tasks go to (None: not started yet, or none at all) and its workers."""

    def __init__(self, master: Any, *, start: bool, workers: int, cores: int | None, gpus: int) -> None:
        self.master = master
        self.start = start  # this backend starts a master of its own
        self.owned = False  # it did: cancelled at shutdown, and a worker that ends is a loss too
        self.workers = workers
        self.cores = cores or 1
        self.cores_given = cores is not None
        self.gpus = gpus
        self.uids: set[str] = {master.uid} if master is not None else set()
        self.lost: BaseException | None = None

    def launch(self, rp: Any, task_manager: Any, pilot: Any, token: str) -> None:
        """Submit a master and its workers to ``pilot`` (on the start thread)."""
        master = rp.TaskDescription({"mode": rp.RAPTOR_MASTER, "uid": f"{token}.raptor"})
        self.master = task_manager.submit_raptors([master], pilot.uid)[0]
        self.owned = True
        workers = [
            rp.TaskDescription(
                {
                    "mode": rp.RAPTOR_WORKER,
                    "uid": f"{token}.raptor.w{i}",
                    "ranks": 1,
                    "cores_per_rank": self.cores,
                    "gpus_per_rank": self.gpus,
                }
            )
            for i in range(self.workers)
        ]
        self.uids.update([self.master.uid, *(w.uid for w in workers)])
        self.master.submit_workers(workers)

    def fit(self, resource_config: Mapping[str, Any], pd: Mapping[str, Any]) -> None:
        """Unless ``worker_cores`` was given: half of a node's cores but one, at least one, per worker."""
        if self.cores_given:
            return
        per_node = int(resource_config.get("cores_per_node") or 0) or 1
        cores = int(pd.get("cores") or 0) or per_node * int(pd.get("nodes") or 1)
        self.cores = max(1, (min(cores, per_node) - 1) // 2)

    def fields(self, spec: TaskSpec) -> dict[str, Any]:
        """TaskDescription fields of a function task (without uid and name); the call travels by value."""
        if self.master is None:
            raise cannot_honour(
                "radical",
                spec,
                "a function",
                "it was made with raptor=False and runs no function tasks",
                fix="route the task to another backend with backend=...",
            )
        fields = _tasks.function_fields(spec, worker_cores=self.cores, worker_gpus=self.gpus)
        fields["mode"] = "task.function"
        fields["raptor_id"] = self.master.uid
        fields["function"] = _remote.dumps(spec.func, spec.args, spec.kwargs)
        return fields

    @staticmethod
    def described(rp: Any, fields: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
        """The fields with the payload wrapped as the call RAPTOR makes: ``_remote.run(payload, path)``."""
        return dict(fields, function=rp.PythonTask(_remote.run, (fields["function"], path), {}))

    def ended(self, uid: str, state: str) -> BaseException | None:
        """A RAPTOR task of ours reached ``state``: the error function tasks now fail with, if it is a loss."""
        is_master = uid == getattr(self.master, "uid", None)
        error = WorkerLost(
            f"the RAPTOR {'master' if is_master else 'worker'} {uid} ended ({state}); function tasks cannot run"
        )
        if not (is_master or self.owned):
            return None
        self.lost = error
        return error
