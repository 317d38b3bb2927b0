"""ParslExecutionBackend: flowbridge tasks as Parsl apps on a DataFlowKernel."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flowbridge import ConfigError
from flowbridge.adapter import Adapter, Handle, TaskSpec
from flowbridge.toolkit import codec
from flowbridge.toolkit.blocking import off_loop
from flowbridge.toolkit.owned import Owned

from . import _cleanup
from ._config import LABEL, Options, fix_htex, owned_config
from ._handle import ParslTask
from ._payload import pack, run_command, run_function
from ._resources import ResourceMap

_log = logging.getLogger("flowbridge.parsl")


class ParslExecutionBackend(Adapter):
    """Runs flowbridge tasks as Parsl apps; dependencies between them stay inside Parsl.

    * ``ParslExecutionBackend()`` owns a DataFlowKernel with a HighThroughputExecutor
      on this machine (LocalProvider, loopback address, run directory under
      flowbridge's, Parsl logging off).
    * ``ParslExecutionBackend(provider="slurm", partition=..., ...)`` the same with its
      blocks as SLURM jobs (SlurmProvider), from plain options a profile can hold.
    * ``ParslExecutionBackend(config=parsl.Config(...))`` owns a DataFlowKernel built
      from your configuration.
    * ``ParslExecutionBackend(dfk=..., executors=[labels])`` submits to a
      DataFlowKernel you run, and never cleans it up.

    The DataFlowKernel is never Parsl's global one (``parsl.load``).
    """

    name = "parsl"
    capabilities = frozenset({"functions", "executables", "async_functions", "native_dependencies", "worker_lost"})
    # What can be asked for; the executor has the last word (see check_resources).
    supported_resources = frozenset({"cores", "gpus", "memory", "ranks", "walltime", "extra"})

    def __init__(
        self,
        config: Any = None,
        *,
        dfk: Any = None,
        executors: Sequence[str] | str | None = None,
        run_dir: str | Path | None = None,
        keep_run_dir: bool = False,
        name: str | None = None,
        **options: Any,
    ) -> None:
        self._named(name)
        if dfk is not None and config is not None:
            raise ConfigError("ParslExecutionBackend takes config= or dfk=, not both")
        if dfk is not None and not (hasattr(dfk, "submit") and hasattr(dfk, "executors")):
            raise TypeError(f"dfk= takes a parsl DataFlowKernel, not {type(dfk).__name__}")
        if config is not None and not hasattr(config, "executors"):
            raise TypeError(f"config= takes a parsl.Config, not {type(config).__name__}")
        if run_dir is not None and not isinstance(run_dir, (str, os.PathLike)):
            raise ConfigError(f"run_dir={run_dir!r} ({type(run_dir).__name__}): expected a path (str or Path)")
        if type(keep_run_dir) is not bool:
            raise ConfigError(f"keep_run_dir={keep_run_dir!r} ({type(keep_run_dir).__name__}): expected True or False")
        labels_ok = isinstance(executors, Sequence) and all(isinstance(e, str) for e in executors)
        if executors is not None and not labels_ok:
            raise ConfigError(f"executors={executors!r}: expected an executor label (str) or a list of labels")
        self.options = Options.from_kwargs(options, _OWN_OPTIONS)
        if dfk is not None or config is not None:
            if self.options.given():
                raise ConfigError(
                    f"{', '.join(self.options.given())} shape a DataFlowKernel flowbridge builds; "
                    f"with {'dfk' if dfk is not None else 'config'}= set them in your parsl Config instead"
                )
            if dfk is not None and run_dir is not None:
                raise ConfigError("run_dir= is for a DataFlowKernel flowbridge builds; yours has its own")
        elif executors is not None:
            raise ConfigError("executors= picks executors of your DataFlowKernel or Config; pass dfk= or config= too")

        self.dfk: Any = dfk
        self.run_dir: Path | None = Path(run_dir) if run_dir is not None else None
        self._config = config
        self._owned = dfk is None
        self._labels = [executors] if isinstance(executors, str) else list(executors) if executors else None
        if config is not None and self._labels is not None:  # known before anything starts
            have = [e.label for e in config.executors]
            unknown = [label for label in self._labels if label not in have]
            if unknown:
                raise ConfigError(
                    f"executors={self._labels!r}: {', '.join(map(repr, unknown))} not in your Config "
                    f"(it has {', '.join(map(repr, have))})"
                )
        self._keep = keep_run_dir or self.options.logging
        self._live: set[ParslTask] = set()
        self._functions = codec.Functions()
        self._resources = ResourceMap(self)
        self._building: asyncio.Future[Any] | None = None
        self._closed = False
        self._gate = threading.Lock()  # the build starts no block once shutdown gave up on it
        self._run_function: Any = None
        self._run_command: Any = None
        self._own = Owned("parsl", keep_run_dir=self._keep)  # run dir, owner tag, reaper: released at the end
        self._markers: Path | None = None  # cancel markers of executable tasks
        self._bulk: set[str] | None = None  # tags collected while shutdown cancels everything
        self._kill_lock = threading.Lock()
        self._doomed: set[str] = set()  # tags of cancelled commands still to kill
        self._killer = False  # a thread is killing them

    def __repr__(self) -> str:
        if not self._owned:
            return f"<ParslExecutionBackend your DataFlowKernel {self._labels or 'all executors'}>"
        if self._config is not None:
            return "<ParslExecutionBackend your Config>"
        return f"<ParslExecutionBackend HTEX on {self.options.provider}>"

    # -- the contract ----------------------------------------------------------------------

    async def start(self) -> None:
        if self._closed:
            raise RuntimeError("this ParslExecutionBackend has been shut down; make a new one")
        # Daemon threads (off_loop), never asyncio.to_thread: asyncio.run joins those at exit without
        # a limit, and a DataFlowKernel can take minutes to fail. ship_by_value learns once (~20 ms,
        # a subprocess) what a fresh worker can import.
        self._building = asyncio.ensure_future(
            asyncio.gather(off_loop(self._build), off_loop(codec.ship_by_value, run_function))
        )
        await asyncio.shield(self._building)

    def _build(self) -> None:
        """Blocking: build (or check) the DataFlowKernel and start the first blocks at once.

        Whatever fails, nothing is left behind: processes started so far are killed by
        their owner tag and the directories flowbridge made are removed.
        """
        try:
            self._build_kernel()
        except _ShutDown:  # shutdown came first: it is waiting for this, nobody for the start
            self._abandon()
        except BaseException:
            self._abandon()
            raise

    def _build_kernel(self) -> None:
        from parsl.app.errors import wrap_error
        from parsl.dataflow.dflow import DataFlowKernel

        if self.dfk is None:
            config = self._config
            with self._gate:  # a shutdown that came first finds nothing made; one that comes later, all of it
                if self._closed:
                    raise _ShutDown
                if self.run_dir is None and (config is None or config.run_dir == "runinfo"):
                    # Parsl's default run_dir would litter the working directory
                    self.run_dir = self._own.run_dir()
                elif self.run_dir is None:
                    self.run_dir = Path(config.run_dir).absolute()
                self._tag(self.run_dir)  # from here on, the reaper removes what this start leaves
            if config is None:
                config = owned_config(self.options, self.run_dir)
                if not self.options.logging:
                    _quiet_parsl()
            else:
                config.run_dir = str(self.run_dir)
                for executor in config.executors:
                    fix_htex(executor, str(self.run_dir))
            self.dfk = DataFlowKernel(config)
            with self._gate:
                if self._closed:
                    raise _ShutDown
                if self._config is None:
                    for executor in self.dfk.executors.values():
                        if executor.label == LABEL:
                            executor.scale_out_facade(self.options.blocks)
        else:
            with self._gate:
                if self._closed:
                    raise _ShutDown
                self._tag(self._own.run_dir())  # cancel markers of tasks on your kernel, nothing else
        labels = [label for label in self.dfk.executors if label != "_parsl_internal"]
        if self._labels is None:
            self._labels = labels
        unknown = [label for label in self._labels if label not in labels]
        if unknown:
            raise ConfigError(
                f"executors={self._labels!r}: {', '.join(map(repr, unknown))} not in this DataFlowKernel "
                f"(it has {', '.join(map(repr, labels))})"
            )
        self._run_function = wrap_error(run_function)
        self._run_command = wrap_error(run_command)

    def _tag(self, where: Path) -> None:
        """Own the tag ``where`` stands for; the reaper kills everything carrying it if this process dies.

        Called holding the gate, so that a concurrent shutdown sees both or neither.
        """
        self.owner_tag = str(where)
        self._markers = where / "flowbridge-cancelled"
        self._markers.mkdir(parents=True, exist_ok=True)
        self._own.callback(shutil.rmtree, self._markers, ignore_errors=True)  # also from a run dir kept
        self._own.tag(self.owner_tag)

    def _executor_objects(self) -> list[Any]:
        """The Parsl executors tasks go to (known once started, or from the config before)."""
        if self.dfk is not None and self._labels is not None:
            return [self.dfk.executors[label] for label in self._labels]
        if self._config is not None:
            wanted = self._labels
            return [e for e in self._config.executors if wanted is None or e.label in wanted]
        return []

    def check_resources(self, task: TaskSpec) -> None:
        if task.resources is not None:
            self._resources.translate(task)

    def submit(self, task: TaskSpec) -> Handle:
        if self._closed:
            raise RuntimeError(f"the parsl backend is shut down; task {task.name} ({task.uid}) was not submitted")
        kwargs: dict[str, Any] = {}
        walltime = None
        if task.resources is not None:
            spec, walltime = self._resources.translate(task)
            if spec:
                kwargs["parsl_resource_specification"] = spec
        handle = ParslTask(task.uid, task.name, self._live)
        if task.kind == "function":
            function = self._functions.dumps(task.func)
            arguments, deps = codec.pack_arguments(task.args, task.kwargs, ParslTask)
            func, args = self._run_function, (pack(function, arguments), *(dep.gate() for dep in deps))
        else:
            assert self.owner_tag is not None and self._markers is not None
            handle.tag = f"{self.owner_tag}:{task.uid}:{task.attempt}"
            handle.on_cancel = self._cancelled
            marker = str(self._markers / f"{task.uid}.{task.attempt}")
            func, args = self._run_command, (task.command, handle.tag, self.owner_tag, marker)
        if walltime is not None:
            from parsl.app.python import timeout

            func = timeout(func, walltime)
            kwargs["walltime"] = walltime
        try:
            app_future = self.dfk.submit(
                func, app_args=args, executors=self._labels, cache=False, ignore_for_cache=None, app_kwargs=kwargs
            )
        except BaseException:
            self._live.discard(handle)
            raise
        handle.follow(app_future)
        return handle

    def native(self, handle: Handle) -> Any:
        return handle if type(handle) is ParslTask else None

    def _cancelled(self, handle: ParslTask) -> None:
        """An executable task was cancelled (or timed out): its command must not run or go on running."""
        assert handle.tag is not None and self._markers is not None
        uid_attempt = handle.tag.rsplit(":", 2)
        try:
            (self._markers / f"{uid_attempt[-2]}.{uid_attempt[-1]}").touch()
        except OSError:  # the run directory is gone: so is everything that could run
            pass
        if self._bulk is not None:
            self._bulk.add(handle.tag)
            return
        with self._kill_lock:  # one killer thread at a time, however many tasks are cancelled at once
            self._doomed.add(handle.tag)
            if self._killer:
                return
            self._killer = True
        threading.Thread(target=self._kill_doomed, name="flowbridge-parsl-kill", daemon=True).start()

    def _kill_doomed(self) -> None:
        while True:
            with self._kill_lock:
                tags, self._doomed = self._doomed, set()
                if not tags or self.owner_tag is None:
                    self._killer = False
                    return
            _cleanup.kill_commands(self.owner_tag, tags)

    async def shutdown(self, *, cancel: bool = True) -> None:
        """Settle every task; kill the commands of cancelled executables; release what this backend owns.

        With ``cancel=True`` it returns within about :data:`CANCEL_BUDGET` s whatever runs: each
        step is bounded and what outlives its bound is killed by the owner tag.
        """
        if self._closed:
            return
        self._closed = True
        deadline = time.monotonic() + (CANCEL_BUDGET if cancel else PATIENT_BUDGET)
        if self._building is not None and not self._building.done():
            await asyncio.wait([self._building], timeout=BUILD_WAIT if cancel else max(1.0, _left(deadline)))
        built = (
            self._building is not None
            and self._building.done()
            and not self._building.cancelled()
            and self._building.exception() is None
            and self.dfk is not None
            and not getattr(self.dfk, "cleanup_called", False)
        )
        self._bulk = set()
        for handle in list(self._live):  # Parsl would leave them pending forever
            handle.cancel()
        tags, self._bulk = self._bulk, None
        owner = self.owner_tag
        if tags and owner is not None:
            await self._bounded(_cleanup.kill_commands, owner, tags, timeout=max(0.5, min(3.0, _left(deadline))))
        if self._owned and built:
            try:
                step = _cleanup.dfk_cleanup if cancel else _cleanup.cleanup
                await off_loop(step, self.dfk, timeout=max(0.5, _left(deadline) - KILL_RESERVE))
            except TimeoutError:
                _log.warning("the Parsl DataFlowKernel did not clean up in time; killing its interchange and blocks")
            except Exception as exc:
                _log.warning("the Parsl DataFlowKernel did not clean up cleanly: %r", exc)
        await self._bounded(self._finish, deadline, timeout=max(1.0, _left(deadline)))

    async def _bounded(self, fn: Any, *args: Any, timeout: float) -> None:
        try:
            await off_loop(fn, *args, timeout=timeout)
        except TimeoutError:
            _log.warning("%s did not finish within %.1f s", getattr(fn, "__name__", fn), timeout)

    def _finish(self, deadline: float, wait_for_jobs: bool = True) -> None:
        """Blocking: kill whatever of ours is left, remove what flowbridge made, stop the reaper."""
        with self._gate:  # a build still running starts nothing from now on
            self._closed = True
        owner = self.owner_tag
        if owner is not None and self._owned:  # the blocks' processes and batch jobs, before the rest
            jobs = _cleanup.batch_jobs(self.dfk) if self.dfk is not None else []
            _cleanup.kill_owned(owner, jobs, deadline if wait_for_jobs else None)
        self._own.release()  # what carries the tag, the reaper, the markers, the run dir flowbridge made

    def _abandon(self) -> None:
        """A failed start: clean up a kernel that was built (bounded), then kill and remove the rest."""
        dfk = self.dfk if self._owned else None
        if dfk is not None and not getattr(dfk, "cleanup_called", True):
            done = threading.Event()

            def clean() -> None:
                try:
                    dfk.cleanup()
                except Exception:
                    pass
                done.set()

            threading.Thread(target=clean, name="flowbridge-parsl-cleanup", daemon=True).start()
            done.wait(BUILD_WAIT)
        self._finish(time.monotonic() + BUILD_WAIT)

    def kill(self) -> None:
        """Last resort (the engine gave up waiting for shutdown): kill what this backend owns, at once.

        SIGKILL to every process of the owner tag on this host and ``scancel`` of the owned
        batch jobs, without waiting for them to leave the queue; the run directory goes.
        """
        self._closed = True
        self._bulk = set()
        for handle in list(self._live):
            handle.cancel()
        self._bulk = None
        self._finish(time.monotonic() + 1.0, wait_for_jobs=False)


CANCEL_BUDGET = 6.0  # seconds shutdown(cancel=True) takes at most (the engine allows 7, then calls kill)
PATIENT_BUDGET = 50.0  # seconds a plain shutdown gives the kernel before it kills what is left (the engine: 60)
BUILD_WAIT = 3.5  # seconds shutdown(cancel=True) waits for a kernel still starting
KILL_RESERVE = 2.0  # seconds kept for killing what is left and cancelling batch jobs
_OWN_OPTIONS = ("config", "dfk", "executors", "run_dir", "keep_run_dir")


class _ShutDown(Exception):
    """Shutdown began while the kernel was being built."""


def _left(deadline: float) -> float:
    return max(0.0, deadline - time.monotonic())


def _quiet_parsl() -> None:
    """Keep Parsl's records (a traceback per failed task) off stderr when no logging is configured.

    With no handler anywhere, Python prints WARNING and above through its last-resort
    handler; a NullHandler on "parsl" stops that and nothing else: records still reach
    the handlers an application configures.
    """
    parsl_logger = logging.getLogger("parsl")
    if not any(isinstance(h, logging.NullHandler) for h in parsl_logger.handlers):
        parsl_logger.addHandler(logging.NullHandler())
