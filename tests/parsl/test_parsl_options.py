"""Constructor options, registry and profiles: checked without starting anything."""

from __future__ import annotations

from typing import Any

import pytest

import flowbridge
from flowbridge import ConfigError, Resources, UnsupportedResource
from flowbridge._registry import create, load
from flowbridge.adapter import TaskSpec


def test_name_registry_and_lazy_import() -> None:
    from flowbridge_parsl import ParslExecutionBackend

    assert flowbridge.ParslExecutionBackend is ParslExecutionBackend
    assert load("parsl") is ParslExecutionBackend
    assert ParslExecutionBackend.name == "parsl"
    assert "native_dependencies" in ParslExecutionBackend.capabilities


def test_profile_options_build_a_slurm_backend_without_starting_it() -> None:
    backend = create(
        "parsl",
        {
            "provider": "slurm",
            "partition": "debug",
            "nodes_per_block": 2,
            "cores_per_node": 4,
            "exclusive": True,
            "walltime": "01:00:00",
            "launcher": "simple",
            "worker_init": "module load python",
        },
    )
    assert backend.dfk is None and "slurm" in repr(backend)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"partition": "debug"}, "SLURM options"),
        ({"provider": "pbs"}, "provider"),
        ({"config": object()}, "parsl.Config"),
        ({"dfk": object()}, "DataFlowKernel"),
        ({"executors": ["htex"]}, "dfk= or config="),
        ({"blocks": 0}, "blocks"),
        ({"launcher": "mpirun", "provider": "slurm"}, "srun, simple, single"),
        ({"cores": 4}, "unknown option"),
        ({"dfk": object(), "run_dir": "/tmp"}, "DataFlowKernel"),
    ],
)
def test_bad_options_say_what_is_wrong(options: dict[str, Any], message: str) -> None:
    with pytest.raises((TypeError, ValueError, ConfigError), match=message):
        create("parsl", options)


def test_dfk_and_config_take_no_sizing_options() -> None:
    from parsl.config import Config

    from flowbridge_parsl import ParslExecutionBackend

    with pytest.raises(ConfigError, match="workers, heartbeat_period shape a DataFlowKernel"):
        ParslExecutionBackend(config=Config(), workers=2, heartbeat_period=5)
    with pytest.raises(ConfigError, match="not both"):
        ParslExecutionBackend(config=Config(), dfk=object())


def test_resources_are_refused_before_start() -> None:
    from flowbridge_parsl import ParslExecutionBackend

    backend = ParslExecutionBackend()

    def spec(**fields: Any) -> TaskSpec:
        return TaskSpec("task.000001", "t", "function", resources=Resources(**fields))

    backend.check_resources(spec(walltime="00:01:00", extra={"priority": 3}))
    for fields in ({"cores": 2}, {"gpus": 1}, {"memory": "1GB"}, {"ranks": 4}, {"extra": {"nope": 1}}):
        with pytest.raises(UnsupportedResource, match="'parsl' backend"):
            backend.check_resources(spec(**fields))
