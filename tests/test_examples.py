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
