"""`flowbridge run --report out.html wf.py`: the report is written however the script ends."""

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest

FAILING = """
from flowbridge import WorkflowEngine
flow = WorkflowEngine()
ok = flow.function_task(lambda: 1, name="fine")
bad = flow.function_task(lambda x: 1 / 0, name="divide")
await bad(ok())
"""

INTERRUPTED = """
import pathlib, threading
from flowbridge import WorkflowEngine
flow = WorkflowEngine()
done = await flow.function_task(lambda: 2, name="quick")()
slow = flow.function_task(lambda: threading.Event().wait(30), name="slow")()
pathlib.Path("started").write_text("")
await slow
"""

SYNC = """
from flowbridge import WorkflowEngine
with WorkflowEngine() as flow:
    print(flow.function_task(lambda: 21 * 2, name="answer")().result(10))
"""


def flowbridge_run(tmp_path, script, *options):
    (tmp_path / "wf.py").write_text(script)
    return [sys.executable, "-m", "flowbridge", "run", *options, "wf.py"]


def test_report_after_a_failing_script(tmp_path):
    cmd = flowbridge_run(tmp_path, FAILING, "--report", "out.html")
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0 and "ZeroDivisionError" in proc.stderr
    page = (tmp_path / "out.html").read_text()
    assert "task.000002 (divide)" in page and "ZeroDivisionError: division by zero" in page
    assert page.count('<rect class="bar"') == 2
    assert "report written to out.html" in proc.stderr


def test_json_report_of_a_synchronous_script(tmp_path):
    cmd = flowbridge_run(tmp_path, SYNC, "--report", "out.json")
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "42"
    (task,) = json.loads((tmp_path / "out.json").read_text())["tasks"]
    assert (task["name"], task["state"]) == ("answer", "DONE")


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a process group")
def test_report_after_ctrl_c(tmp_path):
    cmd = flowbridge_run(tmp_path, INTERRUPTED, "--report", "out.html")
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while not (tmp_path / "started").exists():
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode != 0 and "KeyboardInterrupt" in err
    page = (tmp_path / "out.html").read_text()
    # one DONE (quick), one CANCELLED (slow, cancelled by the interrupt): PENDING RUNNING DONE FAILED CANCELLED total
    assert re.search(r"default \(concurrent\)\s+0\s+0\s+1\s+0\s+1\s+2", page), page
    assert page.count('<rect class="bar"') == 2


def test_report_path_must_be_html_or_json(tmp_path):
    cmd = flowbridge_run(tmp_path, SYNC, "--report", "out.pdf")
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--report takes a .html or .json path" in proc.stderr
