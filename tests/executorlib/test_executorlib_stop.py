"""Stop means stop: Ctrl-C, a killed driver and shutdown(cancel=True) leave nothing of executorlib behind."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from flowbridge import ExecutorlibExecutionBackend, WorkflowEngine
from flowbridge.toolkit import procs
from stop_helpers import Script, leftovers

SCRIPT = """
import asyncio, time
from flowbridge import ExecutorlibExecutionBackend, WorkflowEngine
from flowbridge.toolkit import procs

def nap(seconds):
    time.sleep(seconds)
    return seconds

async def main():
    async with WorkflowEngine(backend=ExecutorlibExecutionBackend(max_workers=2)) as flow:
        await flow.function_task(nap)(0)
        command = flow.executable_task(lambda: "sleep 42")()
        body = flow.function_task(nap)(42)
        while not procs.find({"FLOWBRIDGE_OWNER": flow.backends["default"].owner_tag}, text="sleep 42"):
            await asyncio.sleep(0.05)
        print("RUNNING", flush=True)
        await asyncio.gather(command, body)

if __name__ == "__main__":
    asyncio.run(main())
"""


def _ours(run_root: Path, text: str) -> list[int]:
    return sorted(set(procs.find(text=text)) & set(procs.find(text=str(run_root))))


def nap(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@pytest.mark.parametrize("via", ["python", "flowbridge"])
def test_ctrl_c_ends_within_10_s_and_leaves_nothing(tmp_path: Path, via: str) -> None:
    run_root = tmp_path / "run"
    script = Script.write(tmp_path, SCRIPT, via=via, env={"FLOWBRIDGE_RUN_DIR": str(run_root)}).start()
    try:
        script.wait_for("RUNNING")
        seconds = script.interrupt()
    finally:
        script.kill()
    assert seconds <= 10, f"the script took {seconds:.1f} s to end after Ctrl-C"
    assert "KeyboardInterrupt" in script.stderr, script.stderr[-3000:]
    assert leftovers(str(run_root)) == []
    assert _ours(run_root, "sleep 42") == []
    assert list(run_root.iterdir()) == [], "the run directory was left behind"
    print(f"\nCtrl-C ({via}): the script ended {seconds:.2f} s after SIGINT")


def test_killed_driver_takes_its_workers_along(tmp_path: Path) -> None:
    """kill -9 of the driver: the Reaper kills the workers and the command, and removes the run dir."""
    run_root = tmp_path / "run"
    script = Script.write(tmp_path, SCRIPT, via="python", env={"FLOWBRIDGE_RUN_DIR": str(run_root)}).start()
    try:
        script.wait_for("RUNNING")
        assert script.proc is not None
        assert leftovers(str(run_root), seconds=0), "no worker found to begin with"
        os.kill(script.proc.pid, signal.SIGKILL)
        script.proc.wait(10)
        assert leftovers(str(run_root), seconds=10) == []
        deadline = time.monotonic() + 10
        while list(run_root.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert list(run_root.iterdir()) == []
    finally:
        script.kill()


async def test_shutdown_cancel_returns_quickly_whatever_runs(tmp_path: Path) -> None:
    backend = ExecutorlibExecutionBackend(max_workers=1)
    engine = await WorkflowEngine.create(backend=backend)
    run_dir = backend.run_dir
    assert run_dir is not None
    await engine.function_task(nap)(0)
    body = engine.function_task(nap)(42)
    queued = engine.function_task(nap)(42)
    command = engine.executable_task(lambda: "sleep 42")()
    deadline = time.monotonic() + 30
    while not procs.find({procs.OWNER_ENV: str(run_dir)}, text="sleep 42") and time.monotonic() < deadline:
        await asyncio.sleep(0.05)
    start = time.monotonic()
    await asyncio.wait_for(engine.shutdown(cancel=True), 30)
    seconds = time.monotonic() - start
    assert seconds <= 8, f"shutdown(cancel=True) took {seconds:.1f} s"
    print(f"\nshutdown(cancel=True) with a running body, a queued one and a command: {seconds:.2f} s")
    assert all(t.cancelled() for t in (body, queued, command))
    assert leftovers(str(run_dir)) == []
    assert not run_dir.exists()


def test_jupyter_interrupt_cancels_the_cell_and_kills_its_command(tmp_path: Path) -> None:
    from stop_helpers import Kernel

    run_root = tmp_path / "run"
    run_root.mkdir()
    kernel = Kernel(tmp_path, env={"FLOWBRIDGE_RUN_DIR": str(run_root)})
    try:
        out, reply = kernel.run(
            """
            import asyncio
            from flowbridge import WorkflowEngine, ExecutorlibExecutionBackend
            from flowbridge.toolkit import procs
            flow = await WorkflowEngine.create(ExecutorlibExecutionBackend(max_workers=1))
            owner = {"FLOWBRIDGE_OWNER": flow.backends["default"].owner_tag}
            print("ready", await flow.function_task(abs)(-1))
            """
        )
        assert reply["status"] == "ok" and "ready 1" in out, (out, reply)
        msg = kernel.start(
            """
            sleeping = flow.executable_task(lambda: "sleep 42")()
            while not procs.find(owner, text="sleep 42"):
                await asyncio.sleep(0.05)
            print("running", flush=True)
            await sleeping
            """
        )
        kernel.wait_output(msg, "running")
        seconds, out, reply = kernel.interrupt(msg)
        shown = f"{reply.get('ename', '')} {out}"
        assert "KeyboardInterrupt" in shown or "CancelledError" in shown, (out, reply)
        assert seconds <= 10, f"the cell took {seconds:.1f} s to end after the interrupt"
        print(f"\nJupyter interrupt: the cell ended {seconds:.2f} s after interrupt_kernel()")
        assert leftovers_sleep(run_root) == [], "the command outlived the interrupted cell"
        out, reply = kernel.run(
            """
            print("still", await flow.function_task(abs)(-2))
            await flow.shutdown(cancel=True)
            """
        )
        assert reply["status"] == "ok" and "still 2" in out, (out, reply)
    finally:
        kernel.close()
    assert leftovers(str(run_root)) == []
    assert list(run_root.iterdir()) == []


def leftovers_sleep(run_root: Path, seconds: float = 5.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while (left := _ours(run_root, "sleep 42")) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left
