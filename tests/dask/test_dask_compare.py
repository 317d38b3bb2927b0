"""`flowbridge compare` on three real profiles (threads, processes, a Dask LocalCluster), with its HTML page."""

import json
import subprocess
import sys
import textwrap

import pytest

from browser import chromium, open_file

WF = """
import asyncio
from flowbridge import WorkflowEngine

def sq(x):
    return x * x

async with WorkflowEngine() as flow:
    t = flow.function_task(sq)
    first = await asyncio.gather(*(t(i) for i in range(8)))
    print(sum(first), await flow.function_task(sum)(first))
"""


@pytest.mark.skipif(chromium() is None, reason="headless Chromium not installed (apt-get install chromium)")
def test_compare_three_profiles_with_timelines(tmp_path):
    (tmp_path / "flowbridge.toml").write_text(
        textwrap.dedent(
            """
            [profiles.threads]
            backend = "concurrent"

            [profiles.procs]
            backend = "concurrent"
            processes = true

            [profiles.dask]
            backend = "dask"
            n_workers = 1
            threads_per_worker = 2
            """
        )
    )
    (tmp_path / "wf.py").write_text(WF)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "flowbridge",
            "compare",
            "--profiles",
            "threads,procs,dask",
            "--html",
            "cmp.html",
            "--json",
            "cmp.json",
            "wf.py",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    rows = out.stdout.splitlines()
    assert [row.split()[:3] for row in rows[2:5]] == [[p, "yes", "yes"] for p in ("threads", "procs", "dask")]
    assert "DaskExecutionBackend" in rows[4] and "did NOT run" not in out.stdout
    results = json.loads((tmp_path / "cmp.json").read_text())
    assert [r["tasks"] for r in results] == [9, 9, 9] and all(r["makespan_s"] > 0 for r in results)
    with open_file(tmp_path / "cmp.html") as page:
        assert page.errors == []
        assert page.evaluate("document.body.dataset.ready") == "1"
        assert page.evaluate("document.querySelectorAll('svg.timeline rect.bar').length") == 27  # 9 per profile
        titles = page.evaluate(
            "Array.from(document.querySelectorAll('svg.timeline text[font-weight]')).map(t => t.textContent)"
        )
        assert titles == ["threads", "procs", "dask"]
