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


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"workers": "4"}, "workers='4' (str): expected an int >= 1"),
        ({"workers": 0}, "workers=0"),
        ({"workers": True}, "workers=True (bool)"),
        ({"blocks": 1.5}, "blocks=1.5 (float)"),
        ({"strategy_period": "1"}, "strategy_period='1' (str)"),
        ({"heartbeat_period": 5, "heartbeat_threshold": 3}, "heartbeat_threshold=3 must be larger"),
        ({"logging": "yes"}, "logging='yes'"),
        ({"address": 127}, "address=127 (int)"),
        ({"provider": "slurm", "cores_per_node": "8"}, "cores_per_node='8' (str)"),
        ({"provider": "slurm", "exclusive": "no"}, "exclusive='no'"),
        ({"provider": "slurm", "launcher": 3}, "launcher=3"),
        ({"run_dir": 5}, "run_dir=5 (int)"),
        ({"keep_run_dir": "yes"}, "keep_run_dir='yes'"),
    ],
)
def test_type_and_value_errors_name_the_option_as_written(options: dict[str, Any], named: str) -> None:
    """Checked before anything starts, in the user's words: never Parsl's max_workers_per_node."""
    from flowbridge_parsl import ParslExecutionBackend

    with pytest.raises(ConfigError) as info:
        ParslExecutionBackend(**options)
    assert named in str(info.value)
    assert "max_workers_per_node" not in str(info.value)
    with pytest.raises(ConfigError, match=named.split(" ")[0].replace("(", r"\(")):  # the same from a profile
        create("parsl", options)


@pytest.mark.parametrize(
    ("name", "suggestion"),
    [
        ("worker", "workers"),
        ("max_workers_per_node", "workers"),
        ("max_blocks", "blocks"),
        ("keep_rundir", "keep_run_dir"),
    ],
)
def test_unknown_options_suggest_the_closest(name: str, suggestion: str) -> None:
    from flowbridge_parsl import ParslExecutionBackend

    with pytest.raises(ConfigError, match=rf"unknown option {name}=; did you mean {suggestion}=\?"):
        ParslExecutionBackend(**{name: 2})
    with pytest.raises(ConfigError, match=rf"{name}.*{suggestion}"):
        create("parsl", {name: 2})


def test_executors_of_a_config_are_checked_before_start(tmp_path: Any) -> None:
    from parsl_helpers import user_config

    from flowbridge_parsl import ParslExecutionBackend

    with pytest.raises(ConfigError, match="'nope' not in your Config"):
        ParslExecutionBackend(config=user_config(tmp_path), executors=["nope"])


def test_an_owned_config_is_tagged_and_its_interchange_gets_a_session(tmp_path: Any) -> None:
    """Launch commands of an owned Config: Parsl's defaults become guarded ones, yours get a prefix."""
    import sys

    from parsl.executors.high_throughput.executor import DEFAULT_INTERCHANGE_LAUNCH_CMD
    from parsl_helpers import user_config

    from flowbridge_parsl._config import fix_htex

    owner = str(tmp_path / "run dir")
    yours = user_config(tmp_path).executors[0]
    written = list(yours.interchange_launch_cmd)
    fix_htex(yours, owner)
    assert yours.interchange_launch_cmd == ["env", f"FLOWBRIDGE_OWNER={owner}", "setsid", *written]
    assert yours.provider.worker_init.startswith(f"export FLOWBRIDGE_OWNER='{owner}'")

    defaults = user_config(tmp_path, interchange_launch_cmd=None, launch_cmd=None).executors[0]
    assert list(defaults.interchange_launch_cmd) == list(DEFAULT_INTERCHANGE_LAUNCH_CMD)
    fix_htex(defaults, owner)
    assert defaults.interchange_launch_cmd[:4] == ["env", f"FLOWBRIDGE_OWNER={owner}", sys.executable, "-m"]
    assert "--session" in defaults.interchange_launch_cmd
    assert "flowbridge_parsl._guard" in defaults.launch_cmd

    again = str(tmp_path / "again")  # the same Config for a second backend: one prefix, the new owner
    fix_htex(yours, again)
    assert yours.interchange_launch_cmd == ["env", f"FLOWBRIDGE_OWNER={again}", "setsid", *written]
    assert yours.provider.worker_init.count("FLOWBRIDGE_OWNER") == 1 and again in yours.provider.worker_init
    fix_htex(defaults, again)
    assert defaults.interchange_launch_cmd[1] == f"FLOWBRIDGE_OWNER={again}"
