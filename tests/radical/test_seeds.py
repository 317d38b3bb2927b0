"""The RADICAL-Pilot examples (the seeds' and ours), run as a user runs them: ``flowbridge run FILE``.

Each run owns its session and pilot (``RadicalExecutionBackend({'resource':
'local.localhost'})``) from start to shutdown, in a fresh process whose ``HOME``
and working directory are empty temporary folders: afterwards both must still be
empty, the run directory must be gone, and no process of the run may be left.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from radical_helpers import wait_until_gone

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = {
    "seeds/001_hpc_workflow_radical.py": ["Total time running asynchronously is", *["completed at"] * 5],
    "seeds/003_notebook_radical.py": ["Total time running asynchronously is", *["completed at"] * 5],
    "radical_functions.py": [
        "sum of squares = 285",
        "distinct: [1, 2, 3]",
        "caught: negative: -1",
        "mpi: ['rank 0 of 2', 'rank 1 of 2']",
    ],
}

pytestmark = pytest.mark.timeout(300)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_example_runs_and_leaves_nothing(name: str, tmp_path: Path) -> None:
    home, cwd, runs = tmp_path / "home", tmp_path / "cwd", tmp_path / "runs"
    for folder in (home, cwd, runs):
        folder.mkdir()
    env = {**os.environ, "HOME": str(home), "FLOWBRIDGE_RUN_DIR": str(runs), "PYTHONUNBUFFERED": "1"}
    env.pop("FLOWBRIDGE_PROFILE", None)
    result = subprocess.run(
        [sys.executable, "-m", "flowbridge", "run", str(ROOT / "examples" / name)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    for line in EXAMPLES[name]:
        assert result.stdout.count(line) == EXAMPLES[name].count(line), (line, result.stdout)
    assert sorted(p.name for p in home.rglob("*")) == [], "files left in $HOME"
    assert sorted(p.name for p in cwd.rglob("*")) == [], "files left in the working directory"
    assert sorted(p.name for p in runs.rglob("*")) == [], "the run directory was not removed"
    assert not wait_until_gone(str(runs)), "processes of the run are still alive"
