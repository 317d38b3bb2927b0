"""The Parsl benchmark runs end to end (a smoke run: its timings are never asserted here)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_bench_parsl_quick_runs(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_parsl.py"), "--quick", "--repeat", "1"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=220,
    )
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    assert "no-op tasks at once" in proc.stdout and "chain of" in proc.stdout
    assert list(tmp_path.iterdir()) == []
