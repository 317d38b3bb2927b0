"""progress=True and `flowbridge run --progress`: a live bar in a terminal, nothing in a pipe."""

import os
import pty
import re
import select
import subprocess
import sys

import pytest

from flowbridge import WorkflowEngine

SCRIPT = """
import asyncio, time
from flowbridge import WorkflowEngine

def nap(i):
    time.sleep(0.05)
    if i == 3:
        raise ValueError("three")
    return i

async def main():
    async with WorkflowEngine({progress}) as flow:
        await asyncio.gather(*(flow.function_task(nap)(i) for i in range(12)), return_exceptions=True)
    print("end")

asyncio.run(main())
"""


def in_a_terminal(args, cwd):
    """Run a command with stdout and stderr on a pseudo-terminal; what the terminal showed."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(args, cwd=cwd, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower)
    os.close(follower)
    chunks = []
    while True:
        ready, _, _ = select.select([leader], [], [], 60)
        assert ready, "no output for 60 s"
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the other side closed
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.wait(60) == 0, b"".join(chunks).decode(errors="replace")
    return b"".join(chunks).decode(errors="replace")


def test_progress_bar_in_a_terminal(tmp_path):
    (tmp_path / "wf.py").write_text(SCRIPT.format(progress="progress=True"))
    screen = in_a_terminal([sys.executable, "wf.py"], tmp_path)
    final = screen.split("\r\nend\r\n")[0].rsplit("\r", 1)[-1]  # the bar as the engine closed
    assert re.match(r"flowbridge\.\w+: 100%.* 12/12 .*DONE 11 FAILED 1\]$", final), screen


def test_run_progress_option_shows_the_bar_and_a_pipe_stays_clean(tmp_path):
    (tmp_path / "wf.py").write_text(SCRIPT.format(progress=""))
    screen = in_a_terminal([sys.executable, "-m", "flowbridge", "run", "--progress", "wf.py"], tmp_path)
    assert "12/12" in screen and "DONE 11 FAILED 1" in screen, screen
    quiet = in_a_terminal([sys.executable, "-m", "flowbridge", "run", "wf.py"], tmp_path)
    assert "12/12" not in quiet  # off by default
    piped = subprocess.run(
        [sys.executable, "-m", "flowbridge", "run", "--progress", "wf.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert piped.returncode == 0 and piped.stdout == "end\n"
    assert "12/12" not in piped.stderr and "it/s" not in piped.stderr and "task/s" not in piped.stderr


def test_progress_takes_a_bool():
    with pytest.raises(TypeError, match=r"progress=\'yes\'\): progress is True or False"):
        WorkflowEngine(progress="yes")
