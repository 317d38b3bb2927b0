"""ParslExecutionBackend: flowbridge tasks as Parsl apps on a DataFlowKernel."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from flowbridge import worker
from flowbridge.adapter import Adapter, Handle, TaskSpec, make_run_dir

from . import _cleanup
from ._config import LABEL, Options, fix_htex, owned_config
from ._handle import ParslTask
from ._payload import Functions, pack_arguments, run_command, run_function
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
    capabilities = frozenset(
        {"functions", "executables", "async_functions", "native_dependencies", "worker_lost", "resources.walltime"}
    )
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
        **options: Any,
    ) -> None:
        if dfk is not None and config is not None:
            raise TypeError("ParslExecutionBackend takes config= or dfk=, not both")
        if dfk is not None and not (hasattr(dfk, "submit") and hasattr(dfk, "executors")):
            raise TypeError(f"dfk= takes a parsl DataFlowKernel, not {type(dfk).__name__}")
        if config is not None and not hasattr(config, "executors"):
            raise TypeError(f"config= takes a parsl.Config, not {type(config).__name__}")
        known = [f.name for f in dataclasses.fields(Options)]
        unknown = sorted(set(options) - set(known))
        if unknown:
            raise TypeError(
                f"ParslExecutionBackend got unknown option(s) {', '.join(unknown)}; it takes config=, dfk=, "
                f"executors=, run_dir=, keep_run_dir= and {', '.join(known)}"
            )
        self.options = Options(**options)
        if dfk is not None or config is not None:
            if self.options.given():
                raise TypeError(
                    f"{', '.join(self.options.given())} shape a DataFlowKernel flowbridge builds; "
                    f"with {'dfk' if dfk is not None else 'config'}= set them in your parsl Config instead"
                )
            if dfk is not None and run_dir is not None:
                raise TypeError("run_dir= is for a DataFlowKernel flowbridge builds; yours has its own")
        elif executors is not None:
            raise TypeError("executors= picks executors of your DataFlowKernel or Config; pass dfk= or config= too")

        self.dfk: Any = dfk
        self.run_dir: Path | None = Path(run_dir) if run_dir is not None else None
        self._config = config
        self._owned = dfk is None
        self._labels = [executors] if isinstance(executors, str) else list(executors) if executors else None
        self._keep = keep_run_dir or self.options.logging
        self._made_run_dir = False
        self._live: set[ParslTask] = set()
        self._functions = Functions()
        self._resources = ResourceMap(self)
        self._building: asyncio.Future[Any] | None = None
        self._closed = False
        self._run_function: Any = None
        self._run_command: Any = None

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
        self._building = asyncio.ensure_future(
            # ship_by_value learns once (~20 ms, a subprocess) what a fresh worker can import: off the loop
            asyncio.gather(asyncio.to_thread(self._build), asyncio.to_thread(worker.ship_by_value, run_function))
        )
        await asyncio.shield(self._building)

    def _build(self) -> None:
        """Blocking: build (or check) the DataFlowKernel and start the first blocks at once."""
        from parsl.app.errors import wrap_error
        from parsl.dataflow.dflow import DataFlowKernel

        if self.dfk is None:
            config = self._config
            if config is None:
                if self.run_dir is None:
                    self.run_dir = make_run_dir("parsl")
                    self._made_run_dir = True
                config = owned_config(self.options, self.run_dir)
                if not self.options.logging:
                    _quiet_parsl()
            else:
                if self.run_dir is not None:
                    config.run_dir = str(self.run_dir)
                elif config.run_dir == "runinfo":  # Parsl's default would litter the working directory
                    self.run_dir = make_run_dir("parsl")
                    self._made_run_dir = True
                    config.run_dir = str(self.run_dir)
                for executor in config.executors:
                    fix_htex(executor)
            self.dfk = DataFlowKernel(config)
            if self._config is None:
                for executor in self.dfk.executors.values():
                    if executor.label == LABEL:
                        executor.scale_out_facade(self.options.blocks)
        labels = [label for label in self.dfk.executors if label != "_parsl_internal"]
        if self._labels is None:
            self._labels = labels
        unknown = [label for label in self._labels if label not in labels]
        if unknown:
            raise ValueError(
                f"executors={self._labels!r}: {', '.join(map(repr, unknown))} not in this DataFlowKernel "
                f"(it has {', '.join(map(repr, labels))})"
            )
        self._run_function = wrap_error(run_function)
        self._run_command = wrap_error(run_command)

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
            arguments, deps = pack_arguments(task.args, task.kwargs, ParslTask)  # type: ignore[arg-type]
            func, args = self._run_function, (function, arguments, *deps)
        else:
            func, args = self._run_command, (task.command,)
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

    async def shutdown(self, *, cancel: bool = True) -> None:
        if self._closed:
            return
        self._closed = True
        if self._building is not None:
            await asyncio.gather(self._building, return_exceptions=True)
        for handle in list(self._live):  # Parsl would leave them pending forever
            handle.cancel()
        if self._owned and self.dfk is not None:
            await asyncio.to_thread(_cleanup.cleanup, self.dfk)
        if self._made_run_dir and self.run_dir is not None:
            if self._keep:
                _log.info("Parsl run directory kept: %s", self.run_dir)
            else:
                await asyncio.to_thread(shutil.rmtree, self.run_dir, True)


def _quiet_parsl() -> None:
    """Keep Parsl's records (a traceback per failed task) off stderr when no logging is configured.

    With no handler anywhere, Python prints WARNING and above through its last-resort
    handler; a NullHandler on "parsl" stops that and nothing else: records still reach
    the handlers an application configures.
    """
    parsl_logger = logging.getLogger("parsl")
    if not any(isinstance(h, logging.NullHandler) for h in parsl_logger.handlers):
        parsl_logger.addHandler(logging.NullHandler())
