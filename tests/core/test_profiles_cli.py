"""Config profiles, the `flowbridge` command, and the executorlib-style Executor."""

import concurrent.futures
import subprocess
import sys
import textwrap

import pytest

from flowbridge import ConcurrentExecutionBackend, ConfigError, Executor, UnsupportedResource, WorkflowEngine
from flowbridge._config import profile

SCRIPT = """
import threading
from flowbridge import WorkflowEngine
flow = WorkflowEngine()
adapter = flow.backends["default"]
where = flow.function_task(lambda: threading.current_thread().name)
print(type(adapter).__name__, adapter.executor._max_workers, await where())
await flow.shutdown()
"""


@pytest.fixture
def project(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FLOWBRIDGE_PROFILE", raising=False)
    monkeypatch.delenv("FLOWBRIDGE_CONFIG", raising=False)
    (tmp_path / "flowbridge.toml").write_text(
        textwrap.dedent(
            """
            [profiles.small]
            backend = "concurrent"
            max_workers = 1

            [profiles.broken]
            max_workers = 1

            [profiles.typo]
            backend = "concurrent"
            max_wrokers = 1
            """
        )
    )
    return tmp_path


def test_profile_picked_by_environment(project, monkeypatch):
    monkeypatch.setenv("FLOWBRIDGE_PROFILE", "small")
    engine = WorkflowEngine()
    adapter = engine.backends["default"]
    assert isinstance(adapter, ConcurrentExecutionBackend) and adapter.executor._max_workers == 1


def test_profile_errors_name_the_fix(project, monkeypatch):
    with pytest.raises(ConfigError, match="no profile 'gpu' in .*flowbridge.toml; profiles there: broken, small, typo"):
        profile("gpu")
    with pytest.raises(ConfigError, match="profile 'broken' .* needs backend = \"<name>\""):
        profile("broken")
    monkeypatch.setenv("FLOWBRIDGE_PROFILE", "typo")
    with pytest.raises(ConfigError, match="backend 'concurrent' does not take these options: .*max_wrokers"):
        WorkflowEngine()
    (project / "flowbridge.toml").unlink()
    with pytest.raises(ConfigError, match="there is no flowbridge.toml here"):
        profile("small")


def test_pyproject_table_and_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FLOWBRIDGE_PROFILE", raising=False)
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\n\n[tool.flowbridge]\ndefault = "one"\n\n'
        '[tool.flowbridge.profiles.one]\nbackend = "concurrent"\nmax_workers = 3\n'
    )
    assert WorkflowEngine().backends["default"].executor._max_workers == 3


def test_cli_run_with_profile_and_top_level_await(project):
    (project / "wf.py").write_text(SCRIPT)
    out = subprocess.run(
        [sys.executable, "-m", "flowbridge", "run", "--profile", "small", "wf.py"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert out.startswith("ConcurrentExecutionBackend 1 flowbridge")
    bad = subprocess.run(
        [sys.executable, "-m", "flowbridge", "run", "--profile", "nope", "wf.py"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode != 0 and "no profile 'nope'" in bad.stderr


def test_cli_lists_backends():
    out = subprocess.run(
        [sys.executable, "-m", "flowbridge", "backends"], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    assert "concurrent   installed" in out
    assert "executorlib  not installed: 'executorlib' is not installed; pip install \"flowbridge[executorlib]\"" in out


def add(a, b):
    return a + b


def test_executor_interface_with_dependencies():
    with Executor(backend="local", max_workers=2) as exe:
        first = exe.submit(add, 1, 2)
        second = exe.submit(add, first, 10)
        assert isinstance(second, concurrent.futures.Future)
        assert [f.result(timeout=60) for f in concurrent.futures.as_completed([first, second])].count(13) == 1
        with pytest.raises(UnsupportedResource, match="cannot honour ranks"):
            exe.submit(add, 1, 1, resource_dict={"cores": 2})


def test_compare_runs_the_script_on_each_profile(project):
    (project / "flowbridge.toml").write_text(
        '[profiles.threads]\nbackend = "concurrent"\n\n[profiles.procs]\nbackend = "concurrent"\nprocesses = true\n'
    )
    (project / "wf.py").write_text(
        "import asyncio\nfrom flowbridge import WorkflowEngine\n"
        "def sq(x):\n    return x * x\n"
        "async with WorkflowEngine() as flow:\n"
        "    print(sum(await asyncio.gather(*(flow.function_task(sq)(i) for i in range(20)))))\n"
    )
    out = subprocess.run(
        [sys.executable, "-m", "flowbridge", "compare", "--profiles", "threads,procs", "--json", "r.json", "wf.py"],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    rows = out.stdout.splitlines()
    assert rows[0].split()[:3] == ["profile", "ok", "same"]
    assert rows[2].split()[:3] == ["threads", "yes", "yes"] and rows[3].split()[:3] == ["procs", "yes", "yes"]
    import json

    results = json.loads((project / "r.json").read_text())
    assert [r["stdout"] for r in results] == ["2470\n", "2470\n"]
    assert results[1]["engines"][0]["tasks"] == 20 and results[1]["engines"][0]["states"] == {"DONE": 20}
