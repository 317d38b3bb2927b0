"""Stop means stop, on a real RADICAL-Pilot: Ctrl-C, kill -9, shutdown(cancel=True), a Jupyter interrupt.

Each script or kernel owns its session and pilot (RP start-up: 15-90 s here), so the
number of fresh pilots is kept to one per case. ``sleep 42`` commands carry a
marker in their environment, so the checks see this test's commands only. "Nothing
left" means no process whose command line, environment, working directory or open
files mention the run directory (see radical_helpers.processes_mentioning).
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from radical_helpers import processes_mentioning, wait_until_gone

from flowbridge import RadicalExecutionBackend, Resources, WorkflowEngine
from flowbridge.testing.bodies import sleep_then
from stop_helpers import Kernel, Script

pytestmark = pytest.mark.timeout(300)
#: The requirement is 10 s from the signal to the end, whatever runs (measured: ~5 s, printed by
#: each test); the assertions allow 15 s so that a loaded 2-core machine fails only on a hang.
BOUND = 15.0

# The body both scripts run: a warm-up task, then a `sleep 42` command and a sleeping function.
BODY = """
    MARKER = f"fb-stop-{os.getpid()}-{time.time_ns()}"
    marked = Resources(extra={"environment": {"FB_MARKER": MARKER}})
    print(await flow.executable_task(lambda: "echo warm")(), end="", flush=True)
    running = [flow.executable_task(resources=marked)(lambda: "sleep 42")(), flow.function_task(nap)(42)]
    while not procs.find(text=MARKER):
        await asyncio.sleep(0.1)
    print(f"RUNNING {MARKER}", flush=True)
    await asyncio.gather(*running)
"""
HEAD = """
import asyncio, os, time
from flowbridge import RadicalExecutionBackend, Resources, WorkflowEngine
from flowbridge.toolkit import procs

def nap(seconds):
    time.sleep(seconds)
"""
TOP_LEVEL_AWAIT = (
    HEAD
    + """
flow = WorkflowEngine(backend=RadicalExecutionBackend({"resource": "local.localhost"}))
"""
    + "\n".join(line[4:] for line in BODY.splitlines())
)
ASYNCIO_RUN = (
    HEAD
    + """
async def main():
    async with WorkflowEngine(backend=RadicalExecutionBackend({"resource": "local.localhost"})) as flow:
"""
    + "\n".join("    " + line for line in BODY.splitlines())
    + """

asyncio.run(main())
"""
)


def _start(tmp_path: Path, source: str, via: str) -> tuple[Script, Path, str]:
    runs = tmp_path / "runs"
    runs.mkdir()
    script = Script.write(tmp_path, source, via=via, env={"FLOWBRIDGE_RUN_DIR": str(runs)}).start()
    script.wait_for("RUNNING", timeout=240)
    marker = re.search(r"RUNNING (\S+)", script.stdout)
    assert marker is not None
    return script, runs, marker.group(1)


def _assert_nothing_left(runs: Path, marker: str, seconds: float = 5.0, spare: int | None = None) -> None:
    # The run dirs are runs/radical-*: the driver or kernel itself only has FLOWBRIDGE_RUN_DIR=runs.
    # A kernel that lives on (``spare``) may still hold RP's log files open (they are deleted).
    left = [p for p in wait_until_gone(str(runs / "radical-"), seconds, files=True) if p.split(":")[0] != str(spare)]
    assert not left, f"processes of the run are still alive: {left}"
    assert not processes_mentioning(marker), "the `sleep 42` command still runs"
    assert sorted(p.name for p in runs.iterdir()) == [], "the run directory was not removed"


@pytest.mark.parametrize("via", ["flowbridge", "python"])
def test_ctrl_c_stops_everything(tmp_path: Path, via: str) -> None:
    source = TOP_LEVEL_AWAIT if via == "flowbridge" else ASYNCIO_RUN
    script, runs, marker = _start(tmp_path, source, via)
    try:
        took = script.interrupt()
        assert took < BOUND, f"Ctrl-C took {took:.1f} s to end the script (bound {BOUND} s)"
        assert "KeyboardInterrupt" in script.stderr, script.stderr[-3000:]
        _assert_nothing_left(runs, marker)
    finally:
        script.kill()
    print(f"Ctrl-C via {via}: ended after {took:.1f} s")


def test_second_ctrl_c_exits_at_once_and_the_reaper_cleans_up(tmp_path: Path) -> None:
    script, runs, marker = _start(tmp_path, ASYNCIO_RUN, "python")
    assert script.proc is not None
    try:
        os.killpg(script.proc.pid, signal.SIGINT)
        time.sleep(0.5)  # the first one is being handled: the engine is shutting down
        t0 = time.monotonic()
        os.killpg(script.proc.pid, signal.SIGINT)
        script.proc.wait(BOUND)
        took = time.monotonic() - t0
        assert took < 5, f"the script took {took:.1f} s to end after the second Ctrl-C"  # at once: ~0.1 s
        assert "KeyboardInterrupt" in script.stderr, script.stderr[-3000:]
        _assert_nothing_left(runs, marker, seconds=BOUND)  # what the shutdown did not finish: the reaper
    finally:
        script.kill()
    print(f"second Ctrl-C: the script ended {took:.1f} s after it")


def test_kill_9_of_the_driver_leaves_nothing(tmp_path: Path) -> None:
    script, runs, marker = _start(tmp_path, ASYNCIO_RUN, "python")
    assert script.proc is not None
    try:
        os.kill(script.proc.pid, signal.SIGKILL)  # the driver alone: no shutdown, no atexit
        script.proc.wait(10)
        t0 = time.monotonic()
        _assert_nothing_left(runs, marker, seconds=BOUND)
        took = time.monotonic() - t0
    finally:
        script.kill()
    print(f"kill -9: everything gone {took:.1f} s after the driver died")


def test_jupyter_interrupt_then_next_cells_run(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    kernel = Kernel(tmp_path, env={"FLOWBRIDGE_RUN_DIR": str(runs), "PYTHONUNBUFFERED": "1"})
    try:
        out, reply = kernel.run(
            """
            import asyncio, os, time
            from flowbridge import RadicalExecutionBackend, Resources, WorkflowEngine
            from flowbridge.toolkit import procs
            flow = await WorkflowEngine.create(backend=RadicalExecutionBackend({"resource": "local.localhost"}))
            MARKER = f"fb-stop-{os.getpid()}-{time.time_ns()}"
            print(MARKER, await flow.executable_task(lambda: "echo warm")(), end="")
            """,
            timeout=240,
        )
        assert reply["status"] == "ok" and out.endswith(" warm\n"), (out, reply)
        marker = out.split()[0]
        msg = kernel.start(
            """
            task = flow.executable_task(resources=Resources(extra={"environment": {"FB_MARKER": MARKER}}))(
                lambda: "sleep 42")()
            while not procs.find(text=MARKER):
                await asyncio.sleep(0.1)
            print("RUNNING", flush=True)
            try:
                await task
            finally:
                print(f"DELIVERED {time.time()}", flush=True)
            """
        )
        kernel.wait_output(msg, "RUNNING")
        sent = time.time()
        took, out, reply = kernel.interrupt(msg, timeout=30)
        # ipykernel shows the cancelled top-level await as "CancelledError" (its reply may still say "ok").
        shown = f"{reply.get('ename', '')} {out}"
        assert "KeyboardInterrupt" in shown or "CancelledError" in shown, (out, reply)
        delivered = re.search(r"DELIVERED (\S+)", out)
        late = float(delivered.group(1)) - sent if delivered else float("nan")
        assert took < BOUND, f"the cell ended {took:.1f} s after the interrupt (delivered after {late:.1f} s)"
        assert not wait_until_gone(marker, BOUND), "the awaited `sleep 42` outlived the interrupted cell"

        # The kernel and the backend go on: the next cell runs a task on the same pilot.
        out, reply = kernel.run('print(await flow.executable_task(lambda: "echo next")(), end="")', timeout=60)
        assert reply["status"] == "ok" and out == "next\n", (out, reply)
        out, reply = kernel.run(
            """
            t0 = time.monotonic()
            running = flow.executable_task(lambda: "sleep 42")()
            await asyncio.sleep(2)
            await flow.shutdown(cancel=True)   # the `sleep 42` still runs: it is killed
            print(f"closed {time.monotonic() - t0 - 2:.1f}")
            """,
            timeout=60,
        )
        assert reply["status"] == "ok", (out, reply)
        closed = float(out.split()[-1])
        assert closed < BOUND, f"shutdown(cancel=True) took {closed:.1f} s"
        _assert_nothing_left(runs, marker, spare=kernel.km.provisioner.pid)
    finally:
        kernel.close()
    print(f"Jupyter: interrupt delivered after {late:.1f} s, cell ended after {took:.1f} s; shutdown {closed:.1f} s")


# -- on the package's shared pilot (no start-up of its own) ------------------------------------


async def test_shutdown_cancel_on_your_pilot_is_quick(shared: Any) -> None:
    backend = RadicalExecutionBackend(
        pilot=shared.pilot, task_manager=shared.task_manager, raptor=shared.raptor, worker_cores=shared.worker_cores
    )
    engine = await WorkflowEngine.create(backend=backend)
    marker = f"fb-stop-{os.getpid()}-{time.monotonic_ns()}"
    marked = Resources(extra={"environment": {"FB_MARKER": marker}})
    running = [engine.executable_task(resources=marked)(lambda: "sleep 42")(), engine.function_task(sleep_then)(42)]
    deadline = time.monotonic() + 60
    while not processes_mentioning(marker):
        assert time.monotonic() < deadline, "the command never started"
        await asyncio.sleep(0.2)
    t0 = time.monotonic()
    await asyncio.wait_for(engine.shutdown(cancel=True), 30)
    took = time.monotonic() - t0
    assert took < BOUND, f"shutdown(cancel=True) took {took:.1f} s"
    for task in running:
        assert task.cancelled()
    assert not await asyncio.to_thread(wait_until_gone, marker, 5), "the `sleep 42` command still runs"
    assert shared.pilot.state == "PMGR_ACTIVE" and shared.raptor.state not in ("DONE", "FAILED", "CANCELED")
    print(f"shutdown(cancel=True) on your pilot: {took:.1f} s")


def test_failed_pilot_says_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A real pilot whose agent dies at start: a sitecustomize on PYTHONPATH (which RP's processes
    # inherit) ends the agent's interpreter, as a broken environment on a cluster would.
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import os, sys\n"
        "if any(os.path.basename(a) == 'radical-pilot-agent_0' for a in sys.orig_argv[:3]):\n"
        "    sys.stderr.write('flowbridge-test: this agent refuses to start\\n')\n"
        "    sys.stderr.flush()\n"
        "    os._exit(3)\n"
    )
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")])))
    run_dir = tmp_path / "run"
    backend = RadicalExecutionBackend({"resource": "local.localhost"}, raptor=False, run_dir=run_dir)

    async def start_and_stop() -> BaseException:
        try:
            await asyncio.wait_for(backend.start(), 240)
        except Exception as exc:
            error: BaseException = exc
        else:
            error = AssertionError("the pilot started")
        await asyncio.wait_for(backend.shutdown(cancel=True), 30)
        return error

    error = asyncio.run(start_and_stop())
    assert "the agent said" in str(error) and "this agent refuses to start" in str(error), str(error)
    assert not run_dir.exists()
    assert not wait_until_gone(str(run_dir), 5, files=True)
