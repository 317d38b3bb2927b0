"""The seeds' resource dicts as pilot descriptions, and the constructor's checks: no RADICAL-Pilot started."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from flowbridge import ConfigError, RadicalExecutionBackend, UnsupportedResource
from flowbridge._registry import create
from flowbridge.adapter import TaskSpec
from flowbridge_radical import _pilot, _tasks
from flowbridge_radical._remote import CANCELLED, ERROR, OK, _encode, outcome


def test_seed_local_dict() -> None:
    pd, overrides = _pilot.describe({"resource": "local.localhost"}, Path("/x"))
    assert pd == {
        "resource": "local.localhost",
        "runtime": _pilot.LOCAL_RUNTIME,
        "sandbox": "/x",
        "exit_on_error": False,
        "cleanup": False,  # the sandbox is in the run dir, removed at shutdown
        "nodes": 1,
    }
    assert overrides == {}


def test_seed_gpu_cluster_dict() -> None:
    seed = {"resource": "ornl.summit", "queue": "gpu", "nodes": 100, "gpus_per_node": 6, "walltime": 120}
    pd, overrides = _pilot.describe(seed, Path("/x"))
    assert (pd["resource"], pd["queue"], pd["nodes"], pd["runtime"]) == ("ornl.summit", "gpu", 100, 120)
    assert pd["cleanup"] is True  # a remote sandbox: RP removes it
    assert overrides == {"gpus_per_node": 6}


def test_seed_cpu_cluster_dict_with_project() -> None:
    seed = {
        "resource": "tacc.frontera",
        "queue": "normal",
        "nodes": 1000,
        "cores_per_node": 56,
        "walltime": 240,
        "project": "ABC123",
    }
    pd, overrides = _pilot.describe(seed, Path("/x"))
    assert (pd["nodes"], pd["runtime"], pd["project"]) == (1000, 240, "ABC123")
    assert overrides == {"cores_per_node": 56}
    assert _pilot.describe({"resource": "tacc.frontera"}, Path("/x"))[0]["runtime"] == _pilot.BATCH_RUNTIME


@pytest.mark.parametrize(
    "bad",
    [
        {"resource": "local.localhost", "sandbox": "/elsewhere"},
        {"resource": "local.localhost", "exit_on_error": True},
        {"resource": "local.localhost", "nodes": "two"},
        {"resource": "local.localhost", "walltime": 0},
        {"resource": "localhost"},
        {"resource": "local.localhost", "no_such_key": 1},
    ],
    ids=["sandbox", "exit_on_error", "nodes", "walltime", "resource", "unknown"],
)
def test_bad_dicts_fail_at_construction(bad: dict) -> None:
    with pytest.raises(ConfigError):
        RadicalExecutionBackend(bad)


def test_constructor_checks() -> None:
    with pytest.raises(TypeError):
        RadicalExecutionBackend("local.localhost")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="task_manager"):
        RadicalExecutionBackend(task_manager=object())
    with pytest.raises(ConfigError, match=r"^RadicalExecutionBackend: raptor_workers=0 must be an int >= 1$"):
        RadicalExecutionBackend(raptor_workers=0)
    with pytest.raises(ConfigError, match=r"worker_cores=1.5 must be an int >= 1, or None$"):
        RadicalExecutionBackend(worker_cores=1.5)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"^RadicalExecutionBackend: nodes=-1 must be an int >= 0, or None$"):
        RadicalExecutionBackend({"nodes": -1})


def test_no_raptor_refuses_function_tasks_at_submit() -> None:
    backend = RadicalExecutionBackend(raptor=False)
    with pytest.raises(UnsupportedResource, match=r"raptor=False .* backend=\.\.\.$") as caught:
        backend.submit(TaskSpec("t.3", "double", "function", func=len, args=("ab",)))
    assert (caught.value.uid, caught.value.name) == ("t.3", "double")


def test_registry_and_profile_options() -> None:
    backend = create("radical", {"resources": {"resource": "local.localhost"}, "raptor_workers": 2})
    assert isinstance(backend, RadicalExecutionBackend) and backend.name == "radical"


def test_construction_imports_no_radical_pilot() -> None:
    import subprocess

    code = (
        "import sys\nfrom flowbridge import RadicalExecutionBackend\n"
        "RadicalExecutionBackend({'resource': 'local.localhost'})\n"
        "assert 'radical.pilot' not in sys.modules and 'radical.utils' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_resource_config_override_keeps_the_users_configs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    user = tmp_path / "user"
    configs = user / ".radical" / "pilot" / "configs"
    configs.mkdir(parents=True)
    (configs / "resource_local.json").write_text('# a comment\n{"localhost": {"virtenv_mode": "local"}}\n')
    (configs / "resource_mine.json").write_text('{"cluster": {"cores_per_node": 2}}')
    monkeypatch.setenv("RADICAL_CONFIG_USER_DIR", str(user))
    ours = _pilot.write_resource_config(tmp_path / "run", "local.localhost", {"cores_per_node": 4, "gpus_per_node": 0})
    written = ours / ".radical" / "pilot" / "configs"
    assert json.loads((written / "resource_local.json").read_text()) == {
        "localhost": {"virtenv_mode": "local", "cores_per_node": 4, "gpus_per_node": 0}
    }
    assert (written / "resource_mine.json").exists()


def _spec(**resources: object) -> TaskSpec:
    from flowbridge import Resources

    return TaskSpec("t.1", "t", "executable", command=("echo", "a b"), resources=Resources(**resources))  # type: ignore[arg-type]


def test_executable_fields() -> None:
    fields = _tasks.executable_fields(
        _spec(ranks=2, cores=2, gpus=1, memory="1GiB", walltime=30, extra={"environment": {"A": 1}, "pre_exec": ["x"]}),
        local=False,
    )
    assert fields == {
        "executable": "echo",
        "arguments": ["a b"],
        "ranks": 2,
        "cores_per_rank": 2,
        "gpus_per_rank": 1,
        "mem_per_rank": 1024,
        "timeout": 30.0,
        "environment": {"A": "1"},
        "pre_exec": ["x"],
    }
    shell = TaskSpec("t.2", "t", "executable", command="echo $HOME")
    fields = _tasks.executable_fields(shell, local=True)
    assert fields["executable"] == "/bin/sh" and fields["arguments"][0] == "-c"
    # the command runs as written, after two lines that write its start (time, pid) and end for the record
    script = fields["arguments"][1].split("\n")
    assert script[-1] == "echo $HOME" and len(script) == 3 and _tasks.TIMES in script[0] and "trap" in script[1]
    with pytest.raises(UnsupportedResource, match="'radical'"):
        _tasks.executable_fields(_spec(extra={"pre_exec": "not a list"}), local=False)


def test_outcome_round_trip() -> None:
    class Local:  # not importable: needs dill
        def __init__(self) -> None:
            self.v = 1

    assert outcome(_encode(OK, {1, 2})) == (OK, {1, 2})
    kind, value = outcome(_encode(OK, Local()))
    assert kind == OK and value.v == 1
    kind, error = outcome(_encode(ERROR, KeyError("k")))
    assert kind == ERROR and isinstance(error, KeyError)
    assert outcome(_encode(CANCELLED, None)) == (CANCELLED, None)
    with pytest.raises(ValueError):
        outcome({"not": "ours"})
