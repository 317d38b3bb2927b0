"""Every example runs, as a user would run it (`flowbridge run FILE`), and succeeds."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").rglob("*.py"))
# RADICAL-Pilot examples start a pilot each (~20 s): tests/radical runs them on purpose.
RADICAL = [p for p in EXAMPLES if "radical" in p.name]
HERE = [p for p in EXAMPLES if p not in RADICAL]
EXPECTED = {
    "quickstart.py": "sum of squares = 285",
    "002_composite_independent_blocks.py": "Total time running asynchronously is",
    "002_composite_dependent_blocks.py": "Processing Block C completed",
    "004_executor_interface.py": "[2, 4, 6, 8]",
}


@pytest.mark.parametrize("path", HERE, ids=[str(p.relative_to(ROOT / "examples")) for p in HERE])
def test_example_runs(path, tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("FLOWBRIDGE_PROFILE", None)
    result = subprocess.run(
        [sys.executable, "-m", "flowbridge", "run", str(path)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert EXPECTED.get(path.name, "") in result.stdout
    assert list(tmp_path.iterdir()) == [], "the example left files in the working directory"


def test_radical_examples_are_run_by_the_radical_tests():
    sources = "".join(p.read_text() for p in (ROOT / "tests" / "radical").glob("*.py"))
    missing = [p.name for p in RADICAL if p.name not in sources]
    assert not missing, f"examples not run by tests/radical: {missing}"


PROFILES = """
[profiles.dask]
backend = "dask"
n_workers = 2
threads_per_worker = 1

[profiles.parsl]
backend = "parsl"
workers = 2
"""
SEEDS = ["002_composite_dependent_blocks.py", "003_notebook_threads.py"]


@pytest.mark.parametrize("profile", ["dask", "parsl"])
@pytest.mark.parametrize("seed", SEEDS)
def test_seed_scripts_move_to_another_stack_by_profile_alone(seed, profile, tmp_path):
    """The seeds build their own thread backend; an explicit profile still decides where they run."""
    pytest.importorskip(f"flowbridge_{profile}")
    (tmp_path / "flowbridge.toml").write_text(PROFILES)
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "FLOWBRIDGE_RUN_DIR": str(tmp_path / "runs")}
    result = subprocess.run(
        [sys.executable, "-m", "flowbridge", "run", "--profile", profile, str(ROOT / "examples" / "seeds" / seed)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert EXPECTED.get(seed, "completed at") in result.stdout
    assert f"flowbridge: profile {profile!r} (FLOWBRIDGE_PROFILE) runs the default route instead of" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flowbridge.toml", "runs"]
    assert list((tmp_path / "runs").iterdir()) == [], "the run directory was not removed"
