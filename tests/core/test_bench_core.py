"""The core benchmark runs end to end (a smoke run; timings are never asserted here)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_bench_core_quick_runs_and_exits_0(tmp_path):
    # sys.executable: the python of the venv running the tests (it has flowbridge installed).
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_core.py"), "--quick", "--repeat", "1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "tasks at once" in proc.stdout
    assert "absolute target" in proc.stdout
    assert list(tmp_path.iterdir()) == [], "the benchmark left files in the working directory"
