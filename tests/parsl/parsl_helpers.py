"""Helpers shared by the Parsl adapter tests (a module of its own: two conftest.py would clash)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

LABEL = "users_htex"


def user_config(run_dir: Path, **htex: Any) -> Any:
    """A Config as a user writes it for a local HTEX that works from an unactivated venv."""
    from parsl.config import Config
    from parsl.executors import HighThroughputExecutor
    from parsl.executors.high_throughput.executor import DEFAULT_LAUNCH_CMD
    from parsl.logconfigs.noop import NoopLogging
    from parsl.providers import LocalProvider

    pool = f"{sys.executable} -m " + DEFAULT_LAUNCH_CMD.replace(
        "process_worker_pool.py", "parsl.executors.high_throughput.process_worker_pool"
    )
    options: dict[str, Any] = {
        "label": LABEL,
        "address": "127.0.0.1",
        "provider": LocalProvider(init_blocks=1, min_blocks=1, max_blocks=1),
        "interchange_launch_cmd": [sys.executable, "-m", "parsl.executors.high_throughput.interchange"],
        "launch_cmd": pool,
        "heartbeat_period": 1,
        "heartbeat_threshold": 10,
        **htex,
    }
    return Config(
        executors=[HighThroughputExecutor(**options)],
        run_dir=str(run_dir),
        initialize_logging=NoopLogging(),
        strategy_period=0.2,
    )
