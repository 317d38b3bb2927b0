"""The DataFlowKernel configurations the adapter builds, from plain options.

Fixes to Parsl's defaults, measured on this project's machines (docs/adapters/parsl.md):
the interchange and the worker pool run as ``sys.executable -m ...`` (their scripts
are not on ``PATH`` in an unactivated venv), under :mod:`flowbridge_parsl._guard`
(so they die with their owner, and the interchange runs in a session of its own,
out of reach of the terminal's Ctrl-C), every process carries the owner tag
``FLOWBRIDGE_OWNER=<run dir>`` (so it can be found and killed), and the first blocks
are started at once instead of at the first strategy tick (the adapter does that
after building the kernel).
"""

from __future__ import annotations

import dataclasses
import difflib
import shlex
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flowbridge import ConfigError
from flowbridge.toolkit.procs import OWNER_ENV

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
        for name, (what, ok) in _CHECKS.items():
            value = getattr(self, name)
            if not ok(value):
                raise ConfigError(
                    f"ParslExecutionBackend option {name}={value!r} ({type(value).__name__}): expected {what}"
                )
        if self.provider not in PROVIDERS:
            raise ConfigError(f"provider={self.provider!r}: use one of {', '.join(map(repr, PROVIDERS))}")
        if self.provider == "local" and (slurm := [n for n in self.given() if n in self.SLURM]):
            raise ConfigError(f"{', '.join(slurm)} are SLURM options; pass provider='slurm' as well")
        if isinstance(self.launcher, str) and self.launcher not in LAUNCHERS:
            raise ConfigError(f"launcher={self.launcher!r}: use one of {', '.join(LAUNCHERS)} or a parsl Launcher")
        if self.heartbeat_threshold <= self.heartbeat_period:
            raise ConfigError(
                f"heartbeat_threshold={self.heartbeat_threshold} must be larger than "
                f"heartbeat_period={self.heartbeat_period} (a pool counts as lost after that much silence)"
            )

    @classmethod
    def from_kwargs(cls, options: dict[str, Any], others: tuple[str, ...] = ()) -> Options:
        """Options from keyword arguments; an unknown name is a ConfigError naming the closest one."""
        known = [f.name for f in dataclasses.fields(cls)]
        for name in sorted(set(options) - set(known)):
            hint = PARSL_NAMES.get(name) or next(iter(difflib.get_close_matches(name, [*known, *others], 1)), None)
            did_you_mean = f"; did you mean {hint}=?" if hint else "."
            raise ConfigError(
                f"ParslExecutionBackend: unknown option {name}={did_you_mean} It takes "
                f"{', '.join(f'{n}=' for n in others)} and {', '.join(f'{n}=' for n in known)}"
                + (" (other Parsl settings go into a parsl.Config: config=...)" if not hint else "")
            )
        return cls(**options)

    def given(self) -> list[str]:
        """The options that differ from their defaults."""
        return [f.name for f in dataclasses.fields(self) if getattr(self, f.name) != f.default]


def _int(low: int, optional: bool = False) -> Callable[[Any], bool]:
    return lambda v: (optional and v is None) or (type(v) is int and v >= low)


def _number(v: Any) -> bool:
    return type(v) in (int, float) and v > 0


def _str(optional: bool = False) -> Callable[[Any], bool]:
    return lambda v: (optional and v is None) or isinstance(v, str)


def _launcher_ok(v: Any) -> bool:
    if isinstance(v, str):
        return True
    from parsl.launchers.base import Launcher

    return isinstance(v, Launcher)


# option -> (what it takes, check): checked before anything starts, so an error names the
# option as the user wrote it, not the Parsl parameter it becomes
_CHECKS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "provider": ("a str: 'local' or 'slurm'", _str()),
    "workers": ("an int >= 1, or None for one worker per core", _int(1, optional=True)),
    "blocks": ("an int >= 1", _int(1)),
    "address": ("a str (a host name or IP address)", _str()),
    "worker_init": ("a str of shell lines", _str()),
    "heartbeat_period": ("an int >= 1 (seconds)", _int(1)),
    "heartbeat_threshold": ("an int >= 2 (seconds)", _int(2)),
    "strategy_period": ("a number of seconds > 0", _number),
    "logging": ("True or False", lambda v: type(v) is bool),
    "partition": ("a str or None", _str(optional=True)),
    "account": ("a str or None", _str(optional=True)),
    "qos": ("a str or None", _str(optional=True)),
    "constraint": ("a str or None", _str(optional=True)),
    "nodes_per_block": ("an int >= 1", _int(1)),
    "cores_per_node": ("an int >= 1, or None", _int(1, optional=True)),
    "mem_per_node": ("an int >= 1 (GB), or None", _int(1, optional=True)),
    "walltime": ("a str 'HH:MM:SS'", _str()),
    "exclusive": ("True or False", lambda v: type(v) is bool),
    "launcher": ("'srun', 'simple', 'single' or a parsl Launcher", _launcher_ok),
    "scheduler_options": ("a str of '#SBATCH ...' lines", _str()),
}

# Parsl's names for what flowbridge calls otherwise: an unknown option suggests ours
PARSL_NAMES = {
    "max_workers_per_node": "workers",
    "max_workers": "workers",
    "init_blocks": "blocks",
    "min_blocks": "blocks",
    "max_blocks": "blocks",
    "cores_per_worker": "workers",
    "initialize_logging": "logging",
}


def _pool_command() -> str:
    from parsl.executors.high_throughput.executor import DEFAULT_LAUNCH_CMD

    return DEFAULT_LAUNCH_CMD.replace("process_worker_pool.py", POOL, 1)


def _env_prefix(owner: str) -> list[str]:
    return ["env", f"{OWNER_ENV}={owner}"]


def guarded_commands(owner: str) -> tuple[list[str], str]:
    """The interchange argv and the worker-pool command line: this interpreter, guarded, tagged.

    The pool's tag also comes from the provider's ``worker_init`` (see :func:`tag_provider`);
    the interchange is started by Parsl with the driver's environment, so it is tagged here.
    """
    from ._guard import owner_token

    token = owner_token()
    python = [sys.executable, "-m", "flowbridge_parsl._guard"]
    interchange = [*_env_prefix(owner), *python, "--session", token, INTERCHANGE]
    # HTEX fills the pool command in with str.format: keep braces of paths literal
    pool = " ".join(shlex.quote(part).replace("{", "{{").replace("}", "}}") for part in [*python, token])
    return interchange, f"{pool} {_pool_command()}"


def tag_provider(provider: Any, owner: str) -> None:
    """Export the owner tag in the shell that starts each block (local or batch job)."""
    if provider is None or not hasattr(provider, "worker_init"):
        return
    line = f"export {OWNER_ENV}={shlex.quote(owner)}"
    # a Config used again: the earlier owner's line goes
    kept = [x for x in (provider.worker_init or "").split("\n") if not x.startswith(f"export {OWNER_ENV}=")]
    init = "\n".join(kept)
    provider.worker_init = f"{line}\n{init}" if init else line


def fix_htex(executor: Any, owner: str) -> None:
    """Make an HTEX of a Config flowbridge owns findable and out of the terminal's reach.

    Launch commands left at Parsl's defaults run from this interpreter, guarded; commands
    the user wrote are prefixed (``env TAG=... setsid`` for the interchange). Every
    block's shell exports the owner tag.
    """
    from parsl.executors import HighThroughputExecutor
    from parsl.executors.high_throughput.executor import DEFAULT_INTERCHANGE_LAUNCH_CMD, DEFAULT_LAUNCH_CMD

    tag_provider(getattr(executor, "provider", None), owner)
    if not isinstance(executor, HighThroughputExecutor):
        return
    interchange, pool = guarded_commands(owner)
    written = list(executor.interchange_launch_cmd)
    if written[:1] == ["env"] and written[1:2] and written[1].startswith(f"{OWNER_ENV}="):  # a Config used again
        written = written[2:]
        if written[:1] == ["setsid"]:
            written = written[1:]
    if written == list(DEFAULT_INTERCHANGE_LAUNCH_CMD) or "flowbridge_parsl._guard" in written:
        executor.interchange_launch_cmd = interchange
    else:
        setsid = ["setsid"] if shutil.which("setsid") else []
        executor.interchange_launch_cmd = [*_env_prefix(owner), *setsid, *written]
    if executor.launch_cmd == DEFAULT_LAUNCH_CMD or "flowbridge_parsl._guard" in executor.launch_cmd:
        executor.launch_cmd = pool


def _launcher(launcher: Any) -> Any:
    from parsl.launchers import SimpleLauncher, SingleNodeLauncher, SrunLauncher

    if not isinstance(launcher, str):
        return launcher
    return {"srun": SrunLauncher, "simple": SimpleLauncher, "single": SingleNodeLauncher}[launcher](debug=False)


def _provider(options: Options, owner: str) -> Any:
    """A LocalProvider or SlurmProvider with no initial blocks: the adapter starts them at once."""
    sizes: dict[str, Any] = {"init_blocks": 0, "min_blocks": options.blocks, "max_blocks": options.blocks}
    if options.provider == "local":
        from parsl.providers import LocalProvider

        provider: Any = LocalProvider(worker_init=options.worker_init, **sizes)
    else:
        from parsl.providers import SlurmProvider

        slurm = {name: getattr(options, name) for name in Options.SLURM}
        slurm["launcher"] = _launcher(options.launcher)
        provider = SlurmProvider(worker_init=options.worker_init, **sizes, **slurm)
    tag_provider(provider, owner)
    return provider


def owned_config(options: Options, run_dir: Path) -> Any:
    """The HTEX configuration the plain constructor (and the SLURM options) stand for."""
    from parsl.config import Config
    from parsl.executors import HighThroughputExecutor
    from parsl.jobs.error_handlers import windowed_error_handler
    from parsl.logconfigs.noop import NoopLogging

    owner = str(run_dir)
    interchange, pool = guarded_commands(owner)
    htex = HighThroughputExecutor(
        label=LABEL,
        provider=_provider(options, owner),
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
