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
    with pytest.raises(
        ConfigError,
        match=r"profile 'typo' in .*flowbridge.toml: backend 'concurrent' has no option 'max_wrokers' "
        r"\(did you mean 'max_workers'\?\)",
    ):
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
    names = [line.split()[0] for line in out.splitlines()]
    assert names == ["concurrent", "dask", "executorlib", "noop", "parsl", "radical"]


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
        [sys.executable, "-m", "flowbridge", "compare", "--profiles", "threads,procs", "--repeat", "2",
         "--json", "r.json", "wf.py"],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 0, out.stderr
    rows = out.stdout.splitlines()
    assert rows[0].split()[:3] == ["profile", "ok", "same"]
    assert rows[2].split()[:3] == ["threads", "yes", "yes"] and rows[3].split()[:3] == ["procs", "yes", "yes"]
    assert rows[4] == "(medians of 2 runs per profile; start lat: submit to start on the worker, p50)"
    assert "differs" not in out.stdout
    import json

    results = json.loads((project / "r.json").read_text())
    assert [r["profile"] for r in results] == ["threads", "procs"]
    assert [run["stdout"] for r in results for run in r["runs"]] == ["2470\n"] * 4
    procs = results[1]["runs"][0]
    assert procs["engines"][0]["tasks"] == 20 and procs["engines"][0]["states"] == {"DONE": 20}
    assert [t["name"] for t in procs["tasks"]] == ["sq"] * 20  # the run's records came back
    assert results[1]["tasks"] == 20 and results[1]["failed"] == 0 and results[1]["makespan_s"] > 0


def test_compare_shows_a_diff_when_outputs_differ(project):
    (project / "flowbridge.toml").write_text(
        '[profiles.threads]\nbackend = "concurrent"\n\n[profiles.procs]\nbackend = "concurrent"\nprocesses = true\n'
    )
    (project / "wf.py").write_text(
        "import os\nfrom flowbridge import WorkflowEngine\n"
        "async with WorkflowEngine() as flow:\n"
        "    print('same line')\n"
        "    print('profile', os.environ['FLOWBRIDGE_PROFILE'])\n"
        "    await flow.function_task(int)('1')\n"
    )
    out = _cli("compare", "--profiles", "threads,procs", "wf.py", cwd=project)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[3].split()[:3] == ["procs", "yes", "no"]
    diff = out.stdout.split("output of procs differs from threads's:\n", 1)[1].splitlines()
    assert diff[:2] == ["--- threads", "+++ procs"] and diff[3:] == [" same line", "-profile threads", "+profile procs"]


def test_compare_repeat_must_be_a_count(project):
    bad = _cli("compare", "--profiles", "small", "--repeat", "0", "wf.py", cwd=project)
    assert bad.returncode == 2
    assert bad.stderr == "flowbridge: error: compare: --repeat takes a whole number of runs >= 1, not '0'\n"


def _cli(*args: str, cwd=None, env=None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flowbridge", *args], capture_output=True, text=True, timeout=120, cwd=cwd, env=env
    )


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('defualt = "small"', r"flowbridge.toml: unknown key 'defualt' \(did you mean 'default'\?\)"),
        ('default = "smal"', r"default = 'smal' names no profile \(did you mean 'small'\?\)"),
        (
            '[profiles.p]\nbackend = "concurrent"\nprocesses = "no"',
            r"profile 'p' in .*flowbridge.toml: backend 'concurrent': ConcurrentExecutionBackend\(processes='no'\): "
            r"processes must be True or False",
        ),
        (
            '[profiles.p]\nbackend = "concurrent"\nmax_workers = "four"',
            r"profile 'p' in .*: ConcurrentExecutionBackend: max_workers='four' must be an int >= 1, or None",
        ),
        (
            '[profiles.p]\nbackend = "dsak"',
            r"profile 'p' in .*flowbridge.toml: unknown backend 'dsak' \(did you mean 'dask'\?\)",
        ),
    ],
)
def test_config_mistakes_are_errors_naming_file_profile_and_key(tmp_path, monkeypatch, toml, message):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("FLOWBRIDGE_CONFIG", raising=False)
    (tmp_path / "flowbridge.toml").write_text(toml + '\n\n[profiles.small]\nbackend = "concurrent"\n')
    monkeypatch.setenv("FLOWBRIDGE_PROFILE", "p")
    if "profiles.p" not in toml:
        monkeypatch.delenv("FLOWBRIDGE_PROFILE")
    with pytest.raises(ConfigError, match=message):
        WorkflowEngine()


OWN_BACKEND = """
import os, asyncio
from flowbridge import ConcurrentExecutionBackend, WorkflowEngine
async def main():
    flow = await WorkflowEngine.create(backend=ConcurrentExecutionBackend())   # the script's own choice
    print("same process" if await flow.function_task(os.getpid)() == os.getpid() else "other process")
    await flow.shutdown()
if __name__ == "__main__":
    asyncio.run(main())
"""


def test_an_explicit_profile_replaces_the_scripts_own_backend(project):
    (project / "flowbridge.toml").write_text(
        '[profiles.procs]\nbackend = "concurrent"\nprocesses = true\n\n[profiles.threads]\nbackend = "concurrent"\n'
    )
    (project / "wf.py").write_text(OWN_BACKEND)
    plain = subprocess.run([sys.executable, "wf.py"], capture_output=True, text=True, timeout=120, cwd=project)
    assert plain.stdout == "same process\n" and plain.stderr == ""
    for args in (["run", "--profile", "procs", "wf.py"], ["run", "wf.py", "--profile", "procs"]):
        run = _cli(*args, cwd=project)
        assert run.stdout == "other process\n", run.stderr
        assert run.stderr.splitlines() == [
            "flowbridge: profile 'procs' (FLOWBRIDGE_PROFILE) runs the default route instead of the script's "
            "<ConcurrentExecutionBackend DaemonThreadPool>"
        ]
    cmp = _cli("compare", "wf.py", "--profiles", "threads,procs", cwd=project)
    assert cmp.returncode == 0, cmp.stderr
    rows = cmp.stdout.splitlines()[2:]
    assert rows[0].endswith("ran on") is False and "ConcurrentExecutionBackend DaemonThreadPool" in rows[0]
    assert "ConcurrentExecutionBackend ProcessPoolExecutor" in rows[1] and "did NOT run" not in cmp.stdout


def test_cli_options_either_side_of_the_script_and_one_line_errors(project):
    (project / "wf.py").write_text("import sys\nprint(sys.argv[1:])\n")
    assert _cli("run", "wf.py", "--", "--profile", "x", "-v").stdout == "['--profile', 'x', '-v']\n"
    assert _cli("run", "wf.py", "10", "--", "-v").stdout == "['10', '-v']\n"
    bad = _cli("run", "wf.py", "--verbose")
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr == (
        "flowbridge: error: run: unknown option --verbose; to pass it to the script, put it after --: "
        "flowbridge run wf.py -- --verbose\n"
    )
    typo = _cli("run", "--profil", "small", "wf.py")
    assert typo.stderr == "flowbridge: error: run: unknown option --profil (did you mean '--profile'?)\n"
    missing = _cli("run", "wf.py", "--profile", "nope")
    assert missing.returncode == 2 and missing.stderr.startswith("flowbridge: error: no profile 'nope' in ")
    assert len(missing.stderr.splitlines()) == 1
    debug = _cli("run", "wf.py", "--profile", "nope", "--debug")
    assert "Traceback (most recent call last)" in debug.stderr and "ConfigError: no profile 'nope'" in debug.stderr
    version = _cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("flowbridge 0.")
    assert _cli("compare", "wf.py").stderr == "flowbridge: error: compare: --profiles A,B is required\n"


def test_backends_check_starts_each_named_backend_and_runs_a_task(tmp_path):
    out = _cli("backends", "--check", "concurrent", "dask", "noop", cwd=tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    table = out.stdout.split("\n\n", 1)[1].splitlines()
    assert table[0].split() == ["backend", "ok", "start", "s", "task", "s", "stop", "s", "ran", "on"]
    rows = {line.split()[0]: line.split() for line in table[1:]}
    assert list(rows) == ["concurrent", "dask", "noop"] and all(r[1] == "yes" for r in rows.values())
    assert rows["noop"][-2:] == ["Dummy", "Output"]  # the dry-run backend runs no body
    assert rows["dask"][-1].startswith(f"{__import__('socket').gethostname()}:")
    assert list(tmp_path.iterdir()) == []  # nothing left in the working directory
    typo = _cli("backends", "--check", "dsak")
    assert typo.returncode == 2
    assert typo.stderr == "flowbridge: error: backends --check: no backend 'dsak' (did you mean 'dask'?)\n"


def test_engine_from_profile(project):
    with WorkflowEngine.from_profile("small", record=False) as flow:
        adapter = flow.backends["default"]
        assert isinstance(adapter, ConcurrentExecutionBackend) and adapter.executor._max_workers == 1
        assert flow.function_task(add)(1, 2).result(30) == 3 and flow._records is None
    with pytest.raises(ConfigError, match=r"no profile 'smal' in .*flowbridge.toml \(did you mean 'small'\?\)"):
        WorkflowEngine.from_profile("smal")
    with pytest.raises(ConfigError, match=r"backend 'concurrent' has no option 'max_wrokers'"):
        WorkflowEngine.from_profile("typo")
