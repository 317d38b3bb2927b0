"""Stopping on the local backends: Ctrl-C, cancel, timeout, bounded shutdown, engines left open.

Every case runs for real: scripts in their own session get a real SIGINT to their
whole process group (as a terminal's Ctrl-C), a real Jupyter kernel gets a real
interrupt, and leftovers are looked for in /proc by the run dir in their environment.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import textwrap
import time

import pytest

from flowbridge import ConcurrentExecutionBackend, EngineClosed, WorkflowEngine
from flowbridge import _engine as engine_module
from flowbridge.adapter import Adapter, TaskSpec
from flowbridge.toolkit import procs
from stop_helpers import Kernel, Script, leftovers

BACKENDS = {"threads": "ConcurrentExecutionBackend()", "processes": "ConcurrentExecutionBackend(processes=True)"}

ASYNC_RUN = """
import asyncio, time
from flowbridge import ConcurrentExecutionBackend, WorkflowEngine

def busy():
    time.sleep(42)

async def main():
    async with WorkflowEngine({backend}) as flow:
        sleeper = flow.executable_task(lambda: "sleep 42")()
        worker = flow.function_task(busy)()
        await asyncio.sleep(1.0)
        print("RUNNING", flush=True)
        await asyncio.gather(sleeper, worker)

if __name__ == "__main__":
    asyncio.run(main())
"""

TOP_LEVEL_AWAIT = """
import asyncio, time
from flowbridge import ConcurrentExecutionBackend, WorkflowEngine

def busy():
    time.sleep(42)

flow = await WorkflowEngine.create({backend})
sleeper = flow.executable_task(lambda: "sleep 42")()
worker = flow.function_task(busy)()
await asyncio.sleep(1.0)
print("RUNNING", flush=True)
await asyncio.gather(sleeper, worker)
await flow.shutdown()
"""


@pytest.mark.parametrize("backend", list(BACKENDS))
@pytest.mark.parametrize("via", ["python", "flowbridge"])
def test_ctrl_c_ends_the_run_and_its_commands(tmp_path, backend, via):
    source = (ASYNC_RUN if via == "python" else TOP_LEVEL_AWAIT).format(backend=BACKENDS[backend])
    script = Script.write(tmp_path, source, via=via, env={"FLOWBRIDGE_RUN_DIR": str(tmp_path / "run")}).start()
    try:
        script.wait_for("RUNNING")
        assert procs.find(text=str(tmp_path)), "the sleep should be running before Ctrl-C"
        took = script.interrupt()
    finally:
        script.kill()
    assert took < 10, f"Ctrl-C took {took:.1f} s to end the run"
    assert "KeyboardInterrupt" in script.stderr
    assert leftovers(str(tmp_path)) == []


def test_second_engine_loop_is_a_clear_error():
    flow = None

    async def first():
        nonlocal flow
        flow = WorkflowEngine()
        assert await flow.function_task(abs)(-1) == 1

    async def second():
        with pytest.raises(EngineClosed, match="event loop that has closed .* one engine per asyncio.run"):
            flow.function_task(abs)(-2)

    with pytest.warns(ResourceWarning, match="was never shut down and its event loop ended"):
        asyncio.run(first())
    asyncio.run(second())


def test_adapter_class_instead_of_instance():
    with pytest.raises(TypeError, match=r"write ConcurrentExecutionBackend\(\), not ConcurrentExecutionBackend"):
        WorkflowEngine(backend=ConcurrentExecutionBackend)


async def test_cancelling_shutdown_kills_commands_and_stops_waiting_for_threads(tmp_path, caplog):
    marker = f"sleep 42 # {tmp_path}"
    flow = await WorkflowEngine.create(ConcurrentExecutionBackend(processes=True))
    threads = await WorkflowEngine.create()
    cmd = flow.executable_task(lambda: marker)()
    body = threads.function_task(time.sleep)(42)
    cmd2 = threads.executable_task(lambda: marker)()
    await asyncio.sleep(1.0)
    assert len(procs.find(text=str(tmp_path))) == 2
    start = time.monotonic()
    with caplog.at_level(logging.WARNING, "flowbridge"):
        await asyncio.gather(flow.shutdown(cancel=True), threads.shutdown(cancel=True))
    took = time.monotonic() - start
    assert took < 10, f"shutdown(cancel=True) took {took:.1f} s"
    assert cmd.cancelled() and body.cancelled() and cmd2.cancelled()
    assert leftovers(str(tmp_path)) == []
    assert "1 function task(s) still running on threads were abandoned" in caplog.text


@pytest.mark.parametrize("processes", [False, True])
async def test_cancel_and_timeout_kill_the_command(tmp_path, processes):
    async with WorkflowEngine(ConcurrentExecutionBackend(processes=processes)) as flow:
        first = flow.executable_task(lambda: f"sleep 42 # {tmp_path} a")()
        timed = flow.executable_task(timeout=1.0)(lambda: f"sleep 42 # {tmp_path} b")()
        await asyncio.sleep(0.5)
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        with pytest.raises(TimeoutError):
            await timed
        assert leftovers(str(tmp_path)) == []


async def test_plain_shutdown_says_what_it_waits_for_and_takes_a_timeout(caplog):
    flow = await WorkflowEngine.create()
    slow = flow.function_task(name="slowpoke")(time.sleep)(0.5)
    with caplog.at_level(logging.INFO, "flowbridge.engine"):
        await flow.shutdown()
    assert slow.done() and not slow.cancelled()
    assert "shutdown waits for 1 unfinished task(s): task.000001 (slowpoke)" in caplog.text
    flow = await WorkflowEngine.create(ConcurrentExecutionBackend(processes=True))
    stuck = flow.function_task(name="stuck")(time.sleep)(30)
    caplog.clear()
    with caplog.at_level(logging.WARNING, "flowbridge.engine"):
        await flow.shutdown(timeout=0.5)
    assert stuck.cancelled()
    assert "still unfinished after 0.5 s, cancelling them: task.000001 (stuck)" in caplog.text


class Stubborn(Adapter):
    """An adapter whose shutdown never returns: the engine must abandon it, after kill()."""

    name = "stubborn"
    capabilities = frozenset({"functions"})
    killed = False

    def submit(self, task: TaskSpec):
        return asyncio.get_running_loop().create_future()

    async def shutdown(self, *, cancel: bool = True) -> None:
        await asyncio.sleep(3600)  # stuck (a framework call that never answers)

    def kill(self) -> None:
        Stubborn.killed = True


async def test_an_overrunning_adapter_is_killed_and_abandoned(monkeypatch, caplog):
    monkeypatch.setattr(engine_module, "CANCEL_BUDGET", 0.5)
    flow = await WorkflowEngine.create(Stubborn())
    task = flow.function_task(abs)(1)
    start = time.monotonic()
    with caplog.at_level(logging.WARNING, "flowbridge.engine"):
        await flow.shutdown(cancel=True)
    assert time.monotonic() - start < 5 and task.cancelled() and Stubborn.killed
    assert "backend 'stubborn' did not shut down within 0.5 s; killed the processes it started" in caplog.text


def _python(source: str, tmp_path, *args: str) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "wf.py"
    path.write_text(textwrap.dedent(source))
    return subprocess.run(
        [sys.executable, *args, str(path)], capture_output=True, text=True, timeout=120, cwd=tmp_path
    )


def test_sync_engine_left_open_finishes_its_tasks_at_exit(tmp_path):
    source = f"""
    import time
    from pathlib import Path
    from flowbridge import WorkflowEngine
    flow = WorkflowEngine()
    def late():
        time.sleep(0.5)
        Path({str(tmp_path / "done")!r}).write_text("yes")
    flow.function_task(late)()
    """
    for _ in range(3):
        (tmp_path / "done").unlink(missing_ok=True)
        run = _python(source, tmp_path)
        assert run.returncode == 0 and run.stderr == ""
        assert (tmp_path / "done").read_text() == "yes"


def test_async_engine_left_open_warns_and_shuts_down(tmp_path):
    run = _python(
        """
        import asyncio, time
        from flowbridge import WorkflowEngine
        async def main():
            flow = await WorkflowEngine.create()
            flow.function_task(name="forgotten")(time.sleep)(5)
        asyncio.run(main())
        """,
        tmp_path,
        "-W",
        "always::ResourceWarning",
    )
    assert run.returncode == 0
    assert "ResourceWarning: <WorkflowEngine default='concurrent'> was never shut down" in run.stderr
    assert "1 unfinished task(s) were cancelled: task.000001 (forgotten)" in run.stderr
    assert "failed to start" not in run.stderr and "Traceback" not in run.stderr


def test_no_noise_on_stderr_after_normal_runs(tmp_path):
    run = _python(
        """
        import asyncio
        from flowbridge import ConcurrentExecutionBackend, WorkflowEngine
        async def twice(x):
            await asyncio.sleep(0)
            return 2 * x
        async def main():
            for backend in (ConcurrentExecutionBackend(), ConcurrentExecutionBackend(processes=True)):
                async with WorkflowEngine(backend) as flow:
                    print(await flow.function_task(twice)(await flow.function_task(twice)(1)))
                    print((await flow.executable_task(lambda: "echo hi")()).strip())
        if __name__ == "__main__":
            asyncio.run(main())
            with WorkflowEngine() as flow:
                print(flow.function_task(twice)(5).result())
        """,
        tmp_path,
        "-W",
        "default",
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["4", "hi", "4", "hi", "10"]
    assert run.stderr == ""


def test_generators_are_refused():
    flow = WorkflowEngine()

    def gen():
        yield 1

    async def agen():
        yield 1

    with pytest.raises(TypeError, match=r"cannot take a generator function \('gen'\).*Return a list"):
        flow.function_task(gen)
    with pytest.raises(TypeError, match="cannot take an async generator function"):
        flow.function_task(agen)
    with pytest.raises(TypeError, match="cannot take an async generator function"):
        flow.block(agen)

    def returns_gen():
        return (i for i in range(3))

    with pytest.raises(TypeError, match="'test_generators_are_refused.<locals>.returns_gen' returned a generator"):
        flow.function_task(returns_gen)().result(timeout=30)
    flow.close()


def test_jupyter_interrupt_cancels_the_task_and_the_kernel_goes_on(tmp_path):
    kernel = Kernel(tmp_path, env={"FLOWBRIDGE_RUN_DIR": str(tmp_path / "run")})
    try:
        out, reply = kernel.run(
            """
            import asyncio
            from flowbridge import WorkflowEngine
            flow = await WorkflowEngine.create()
            sleeper = flow.executable_task(lambda: "sleep 42")
            print("ready")
            """
        )
        assert reply["status"] == "ok" and "ready" in out, out
        msg = kernel.start("task = sleeper()\nprint('RUNNING', flush=True)\nawait task\n")
        kernel.wait_output(msg, "RUNNING")
        time.sleep(0.5)
        took, out, reply = kernel.interrupt(msg)
        assert took < 10, f"the interrupt took {took:.1f} s"
        assert "CancelledError" in out or "KeyboardInterrupt" in out, out
        assert [p for p in leftovers(str(tmp_path)) if "sleep 42" in p] == []
        out, reply = kernel.run("print(task.cancelled(), await flow.function_task(abs)(-3))\nawait flow.shutdown()")
        assert reply["status"] == "ok" and out.split() == ["True", "3"], out
        assert [p for p in leftovers(str(tmp_path)) if "ipykernel" not in p] == []
    finally:
        kernel.close()
