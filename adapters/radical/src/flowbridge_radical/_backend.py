"""RadicalExecutionBackend: flowbridge tasks on a RADICAL-Pilot pilot.

The backend checks its options and composes three parts, one concern each:

- :mod:`._lifecycle`: the session, managers and pilot it uses or makes, brought up on a
  start thread and closed (or killed) at shutdown, with what start made on one exit stack;
- :mod:`._bridge`: the tasks in flight, from ``submit`` on the engine's loop to RP and back;
- :mod:`._raptor`: the function path, the RAPTOR master and workers function tasks run on.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowbridge import ConfigError
from flowbridge.adapter import Adapter, TaskSpec
from flowbridge.toolkit.blocking import off_loop
from flowbridge.toolkit.checks import count

from . import _environ, _pilot, _tasks
from ._bridge import TaskBridge
from ._lifecycle import GRACE, Lifecycle
from ._raptor import Raptor

if TYPE_CHECKING:
    import radical.pilot as rp

_log = logging.getLogger("flowbridge.radical")
_BACKENDS = itertools.count(1)
_OWNER = "RadicalExecutionBackend"


class RadicalExecutionBackend(Adapter):
    """Runs flowbridge tasks on a RADICAL-Pilot pilot: executables as tasks, functions on RAPTOR.

    ``RadicalExecutionBackend({'resource': 'local.localhost'})`` (the seeds' form)
    creates a session, a pilot and a RAPTOR master with ``raptor_workers`` workers,
    and closes them all at shutdown. The dict takes ``resource``, ``queue``,
    ``project``, ``nodes``, ``cores_per_node``, ``gpus_per_node``, ``walltime``
    (minutes), and ``cores``, ``gpus``, ``memory``, ``access_schema``, ``job_name``.

    ``RadicalExecutionBackend(session=s, pilot=p)`` uses a pilot you run (and its
    TaskManager, or ``task_manager=``); ``raptor=master`` a RAPTOR master you started
    (``raptor=False``: no function tasks). What you bring stays up at shutdown;
    only the tasks this backend submitted are cancelled. ``session=s`` alone submits
    a new pilot from the dict to your session and cancels that pilot at shutdown.

    Sandboxes, the session directory and RP's state go to ``run_dir`` (default: a
    fresh :func:`flowbridge.adapter.make_run_dir`), removed at shutdown unless
    ``keep_run_dir``.
    """

    name = "radical"
    capabilities = frozenset({"functions", "executables", "cancel_running", "worker_lost"})
    supported_resources = frozenset({"cores", "gpus", "ranks", "memory", "walltime", "extra"})

    def __init__(
        self,
        resources: Mapping[str, Any] | None = None,
        *,
        session: rp.Session | None = None,
        pilot: rp.Pilot | None = None,
        task_manager: rp.TaskManager | None = None,
        raptor: Any = None,
        raptor_workers: int = 1,
        worker_cores: int | None = None,
        worker_gpus: int = 0,
        run_dir: str | os.PathLike[str] | None = None,
        keep_run_dir: bool = False,
        start_timeout: float = 300.0,
        name: str | None = None,
    ) -> None:
        self._named(name)
        if resources is not None and not isinstance(resources, Mapping):
            raise TypeError(
                f"RadicalExecutionBackend takes a dict such as {{'resource': 'local.localhost'}}, "
                f"not {type(resources).__name__}"
            )
        if pilot is not None:
            if resources is not None:
                raise ConfigError(
                    "RadicalExecutionBackend: resources describe a pilot to submit; with pilot= omit them"
                )
            if session is not None and getattr(pilot, "session", session) is not session:
                raise ConfigError("RadicalExecutionBackend: pilot= belongs to another session than session=")
        elif task_manager is not None:
            raise ConfigError("RadicalExecutionBackend: task_manager= goes with the pilot= it manages")
        count(_OWNER, "raptor_workers", raptor_workers)
        count(_OWNER, "worker_gpus", worker_gpus, least=0)
        count(_OWNER, "worker_cores", worker_cores, optional=True)
        if raptor is not None and raptor is not False and not hasattr(raptor, "uid"):
            raise ConfigError("RadicalExecutionBackend: raptor= takes a RAPTOR master task, None (start one) or False")
        pd, overrides = _pilot.describe(resources, Path("/"))  # validates the dict now
        resource = pd["resource"] if pilot is None else str(getattr(pilot, "resource", ""))
        self._local = _pilot.is_local(resource) if resource else False
        self._raptor = Raptor(
            raptor if raptor is not False else None,
            start=raptor is None,
            workers=raptor_workers,
            cores=worker_cores,
            gpus=worker_gpus,
        )
        self._bridge = TaskBridge(f"fb{os.getpid()}.{next(_BACKENDS)}", self._raptor, local=self._local)
        self._life = Lifecycle(
            self._bridge,
            pd=pd,
            overrides=overrides,
            resource=resource,
            session=pilot.session if pilot is not None else session,
            pilot=pilot,
            task_manager=task_manager,
            run_dir=Path(run_dir) if run_dir is not None else None,
            keep_run_dir=keep_run_dir,
            start_timeout=start_timeout,
        )
        self._start_future: asyncio.Future[None] | None = None
        self._closed: asyncio.Future[None] | None = None

    def __repr__(self) -> str:
        where = getattr(self.pilot, "uid", None) or self._life.resource
        return f"<RadicalExecutionBackend {where}{'' if self._life.own_pilot else ' (yours)'}>"

    # What it runs on: the user's objects or its own (None once shut down).

    @property
    def session(self) -> rp.Session | None:
        return self._life.session

    @property
    def pilot(self) -> rp.Pilot | None:
        return self._life.pilot

    @property
    def task_manager(self) -> rp.TaskManager | None:
        return self._life.task_manager

    @property
    def raptor(self) -> Any:
        """The RAPTOR master function tasks go to (None: not started yet, or raptor=False)."""
        return self._raptor.master

    @property
    def run_dir(self) -> Path | None:
        return self._life.run_dir

    @property
    def worker_cores(self) -> int:
        """Cores per RAPTOR worker: ``worker_cores=``, or fitted to the pilot's node at start."""
        return self._raptor.cores

    # -- start ----------------------------------------------------------------------------------

    async def start(self) -> None:
        self._bridge.open(asyncio.get_running_loop())
        # Shielded: a cancelled start leaves RP coming up, and shutdown closes (or kills) it. On a daemon
        # thread of its own (off_loop): a start stuck in RP never holds up the program's exit.
        self._start_future = asyncio.ensure_future(off_loop(self._start_blocking, name="flowbridge-radical-start"))
        await asyncio.shield(self._start_future)

    def _start_blocking(self) -> None:
        self.owner_tag = self._life.claim()
        self._life.bring_up()

    # -- submit ---------------------------------------------------------------------------------

    def submit(self, task: TaskSpec) -> asyncio.Future[Any]:
        if task.resources is not None:
            self.check_resources(task)
        if task.kind == "function":
            fields = self._raptor.fields(task)
        else:
            fields = _tasks.executable_fields(task, local=self._local)
        return self._bridge.submit(task, fields)

    # -- shutdown -------------------------------------------------------------------------------

    async def shutdown(self, *, cancel: bool = True) -> None:
        """Cancel this backend's tasks and close what it created.

        ``cancel=True`` returns within ~7 s whatever runs: RP gets ``GRACE`` seconds to close
        cleanly, then every process this backend started is killed and its run dir removed.
        """
        if self._closed is None:
            self._closed = asyncio.ensure_future(self._shutdown(cancel))
        elif cancel and not self._closed.done():  # a waiting shutdown, now asked to hurry
            try:
                await asyncio.wait_for(asyncio.shield(self._closed), GRACE)
            except TimeoutError:
                _log.warning("RADICAL-Pilot is still closing after %.1f s more; killing what it started", GRACE)
                self.kill()
            return
        await asyncio.shield(self._closed)

    async def _shutdown(self, cancel: bool) -> None:
        t0 = time.monotonic()
        starting = self._start_future
        if starting is not None and not starting.done():
            if cancel:  # no waiting for a pilot to come up (20-90 s): stop the start and kill what it made
                self._bridge.close()
                self._life.kill()
                _log.info("RADICAL-Pilot backend stopped while starting, after %.1f s", time.monotonic() - t0)
                return
            await asyncio.gather(starting, return_exceptions=True)
        self._bridge.close()
        if starting is None:  # never started: nothing of RP's to close
            return
        await self._life.close(hurry=cancel)
        _log.debug("RADICAL-Pilot backend shut down after %.1f s", time.monotonic() - t0)
        self._life.let_go()
        _environ.collect_quietly()

    def kill(self) -> None:
        """Last resort, quick: kill every process this backend started, remove its run dir.

        What the user brought (their session, pilot, RAPTOR master) is left alone; tasks this
        backend submitted to a pilot on this machine are killed by their ``FLOWBRIDGE_TASK`` tag.
        """
        self._bridge.closing = True
        self._life.kill()
