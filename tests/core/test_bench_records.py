"""The records benchmark runs end to end (a smoke run; timings are never asserted here)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_bench_records_quick_runs_and_reports_both_sides(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_records.py"), "--quick", "--repeat", "1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "records off" in proc.stdout and "records on" in proc.stdout
    assert "finished tasks, records on" in proc.stdout
    assert list(tmp_path.iterdir()) == [], "the benchmark left files in the working directory"
