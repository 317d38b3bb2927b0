"""The DataFlowKernel configurations the adapter builds, from plain options.

Three fixes to Parsl's defaults, measured on this project's machines (docs/adapters/parsl.md):
the interchange and the worker pool run as ``sys.executable -m ...`` (their scripts
are not on ``PATH`` in an unactivated venv), under :mod:`flowbridge_parsl._guard`
(so they die with their owner), and the first blocks are started at once instead
of at the first strategy tick (the adapter does that after building the kernel).
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

LABEL = "flowbridge_htex"
INTERCHANGE = "parsl.executors.high_throughput.interchange"
POOL = "parsl.executors.high_throughput.process_worker_pool"
PROVIDERS = ("local", "slurm")
LAUNCHERS = ("srun", "simple", "single")


@dataclasses.dataclass(frozen=True)
class Options:
    """What shapes a DataFlowKernel flowbridge builds; plain data, as a profile holds it."""

    provider: str = "local"  # "local" (LocalProvider) or "slurm" (SlurmProvider)
    workers: int | None = None  # workers per node; None: one per core
    blocks: int = 1  # blocks (local worker pools, or SLURM jobs) kept running
    address: str = "127.0.0.1"  # where workers reach the interchange
    worker_init: str = ""  # shell lines run before the worker pool starts
    heartbeat_period: int = 2  # seconds; a dead worker is reported after about this long
    heartbeat_threshold: int = 10  # seconds of silence before a worker pool counts as lost
    strategy_period: float = 1.0  # seconds between Parsl's scaling decisions
    logging: bool = False  # Parsl's own log files in the run directory (which is then kept)
    # SLURM only
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    constraint: str | None = None
    nodes_per_block: int = 1
    cores_per_node: int | None = None
    mem_per_node: int | None = None  # GB
    walltime: str = "00:30:00"
    exclusive: bool = False  # Parsl's own default is True: a whole node per block
    launcher: Any = "srun"  # "srun", "simple", "single" or a parsl Launcher
    scheduler_options: str = ""  # extra "#SBATCH ..." lines

    SLURM = (
        "partition",
        "account",
        "qos",
        "constraint",
        "nodes_per_block",
        "cores_per_node",
        "mem_per_node",
        "walltime",
        "exclusive",
        "launcher",
        "scheduler_options",
    )

    def __post_init__(self) -> None:
        if self.provider not in PROVIDERS:
            raise ValueError(f"provider={self.provider!r}: use one of {', '.join(map(repr, PROVIDERS))}")
        if self.provider == "local" and (slurm := [n for n in self.given() if n in self.SLURM]):
            raise TypeError(f"{', '.join(slurm)} are SLURM options; pass provider='slurm' as well")
        if self.blocks < 1:
            raise ValueError(f"blocks={self.blocks!r} must be >= 1")
        if isinstance(self.launcher, str) and self.launcher not in LAUNCHERS:
            raise ValueError(f"launcher={self.launcher!r}: use one of {', '.join(LAUNCHERS)} or a parsl Launcher")

    def given(self) -> list[str]:
        """The options that differ from their defaults."""
        return [f.name for f in dataclasses.fields(self) if getattr(self, f.name) != f.default]


def guarded_commands(guard: bool = True) -> tuple[list[str], str]:
    """The interchange argv and the worker-pool command line, run by this very interpreter."""
    from parsl.executors.high_throughput.executor import DEFAULT_LAUNCH_CMD

    from ._guard import owner_token

    prefix = [sys.executable, "-m"]
    if guard:
        prefix += ["flowbridge_parsl._guard", owner_token()]
    pool = DEFAULT_LAUNCH_CMD.replace("process_worker_pool.py", POOL, 1)
    return [*prefix, INTERCHANGE], " ".join(prefix) + " " + pool


def fix_htex(executor: Any) -> None:
    """Point an HTEX whose launch commands are Parsl's defaults at this interpreter, guarded."""
    from parsl.executors import HighThroughputExecutor
    from parsl.executors.high_throughput.executor import DEFAULT_INTERCHANGE_LAUNCH_CMD, DEFAULT_LAUNCH_CMD

    if not isinstance(executor, HighThroughputExecutor):
        return
    interchange, pool = guarded_commands()
    if list(executor.interchange_launch_cmd) == list(DEFAULT_INTERCHANGE_LAUNCH_CMD):
        executor.interchange_launch_cmd = interchange
    if executor.launch_cmd == DEFAULT_LAUNCH_CMD:
        executor.launch_cmd = pool


def _launcher(launcher: Any) -> Any:
    from parsl.launchers import SimpleLauncher, SingleNodeLauncher, SrunLauncher

    if not isinstance(launcher, str):
        return launcher
    return {"srun": SrunLauncher, "simple": SimpleLauncher, "single": SingleNodeLauncher}[launcher](debug=False)


def _provider(options: Options) -> Any:
    """A LocalProvider or SlurmProvider with no initial blocks: the adapter starts them at once."""
    sizes: dict[str, Any] = {"init_blocks": 0, "min_blocks": options.blocks, "max_blocks": options.blocks}
    if options.provider == "local":
        from parsl.providers import LocalProvider

        return LocalProvider(worker_init=options.worker_init, **sizes)
    from parsl.providers import SlurmProvider

    slurm = {name: getattr(options, name) for name in Options.SLURM}
    slurm["launcher"] = _launcher(options.launcher)
    return SlurmProvider(worker_init=options.worker_init, **sizes, **slurm)


def owned_config(options: Options, run_dir: Path) -> Any:
    """The HTEX configuration the plain constructor (and the SLURM options) stand for."""
    from parsl.config import Config
    from parsl.executors import HighThroughputExecutor
    from parsl.jobs.error_handlers import windowed_error_handler
    from parsl.logconfigs.noop import NoopLogging

    interchange, pool = guarded_commands()
    htex = HighThroughputExecutor(
        label=LABEL,
        provider=_provider(options),
        address=options.address,
        loopback_address="127.0.0.1",
        interchange_launch_cmd=interchange,
        launch_cmd=pool,
        max_workers_per_node=options.workers,
        heartbeat_period=options.heartbeat_period,
        heartbeat_threshold=options.heartbeat_threshold,
        # A lost block is replaced; only three failed in a row put the executor in bad state.
        block_error_handler=windowed_error_handler,
    )
    return Config(
        executors=[htex],
        run_dir=str(run_dir),
        initialize_logging=True if options.logging else NoopLogging(),
        strategy="simple",
        strategy_period=options.strategy_period,
        retries=0,
    )
