"""The executorlib benchmark runs end to end (a smoke run; timings are never asserted here)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_bench_executorlib_quick_runs_and_prints_the_table(tmp_path: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench_executorlib.py"),
            "--quick",
            "--repeat",
            "1",
            "--json",
            str(tmp_path / "bench.json"),
        ],
        cwd=tmp_path,  # nothing may be written to the working directory
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "no-op tasks at once" in proc.stdout and "chain of" in proc.stdout and "ratio" in proc.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bench.json"]
