"""Stop means stop, on Dask: Ctrl-C, kill -9, cancel, timeout and shutdown(cancel=True) leave
nothing flowbridge started (scheduler, nannies, workers, commands, SLURM jobs, run dir) and
nothing of the user's own cluster stopped; start-up mistakes fail fast with the fix."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dask_helpers import CliCluster, start_cli_cluster

from flowbridge import ConfigError, DaskExecutionBackend, FlowbridgeError, TaskTimeout, WorkflowEngine
from flowbridge.toolkit import procs
from stop_helpers import Kernel, Script, leftovers

QUICK = 60
BOUND = 10.0  # seconds from the signal to the end of the script


def unique_sleep() -> str:
    """A ``sleep 42.<n>`` command no other test (or session) runs."""
    return f"sleep 42.{uuid.uuid4().int % 10**6:06d}"


def running(text: str) -> list[int]:
    return procs.find(text=text)


def gone(text: str, seconds: float = 5.0) -> list[int]:
    """Processes still mentioning ``text`` after up to ``seconds``."""
    deadline = time.monotonic() + seconds
    while (left := running(text)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return left


def run_root(tmp_path: Path) -> Path:
    root = tmp_path / "run"
    root.mkdir()
    return root


def script_env(root: Path) -> dict[str, str]:
    return {"FLOWBRIDGE_RUN_DIR": str(root), "PYTHONPATH": str(Path(__file__).parent)}


# The workflow that runs when Ctrl-C comes: a command (`sleep`) and a Python function on Dask.
BODY = """
@flow.function_task
def nap(seconds):
    import time
    time.sleep(seconds)

@flow.executable_task
def sleeper():
    return SLEEP

napping, sleeping = nap(60), sleeper()
while not procs.find(text=SLEEP):
    await asyncio.sleep(0.05)
print("running", flush=True)
await sleeping
"""

TOP_LEVEL = (
    """
import asyncio, os
from flowbridge import WorkflowEngine, DaskExecutionBackend
from flowbridge.toolkit import procs

backend = DaskExecutionBackend(OPTIONS)
flow = await WorkflowEngine.create(backend)
print("workers", *(await backend.client.run(os.getpid)).values(), flush=True)
"""
    + BODY
)

ASYNCIO_RUN = """
import asyncio, os
from flowbridge import WorkflowEngine, DaskExecutionBackend
from flowbridge.toolkit import procs

async def main():
    async with WorkflowEngine(DaskExecutionBackend(OPTIONS)) as flow:
BODY

if __name__ == "__main__":
    asyncio.run(main())
"""


def top_level_script(options: str, sleep: str) -> str:
    return TOP_LEVEL.replace("OPTIONS", options).replace("SLEEP", repr(sleep))


def asyncio_run_script(options: str, sleep: str) -> str:
    body = "\n".join(f"        {line}" if line else "" for line in BODY.splitlines())
    return ASYNCIO_RUN.replace("BODY", body).replace("OPTIONS", options).replace("SLEEP", repr(sleep))


def assert_stopped(script: Script, seconds: float, root: Path | None, sleep: str) -> None:
    assert seconds < BOUND, f"the script took {seconds:.1f} s to end after Ctrl-C (bound {BOUND} s)"
    assert "KeyboardInterrupt" in script.stderr, script.stderr[-3000:]
    assert gone(sleep) == [], f"{sleep!r} outlived the script"
    if root is not None:
        assert leftovers(str(root)) == [], "processes of flowbridge's cluster outlived the script"
        assert list(root.iterdir()) == [], "the run dir outlived the script"


def worker_pids(script: Script) -> list[int]:
    line = next(line for line in script.stdout.splitlines() if line.startswith("workers"))
    return [int(p) for p in line.split()[1:]]


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliCluster]:
    cluster = start_cli_cluster(tmp_path_factory.mktemp("dask-cli-stop"), workers=2)
    try:
        yield cluster
    finally:
        cluster.stop()


async def still_serves(address: str) -> None:
    from distributed import Client

    async with Client(address, asynchronous=True, timeout=30) as client:
        assert await client.submit(sum, [40, 2], pure=False) == 42


# -- Ctrl-C -------------------------------------------------------------------------------


@pytest.mark.slow
def test_ctrl_c_flowbridge_run_owned_local_cluster(tmp_path: Path) -> None:
    root, sleep = run_root(tmp_path), unique_sleep()
    source = top_level_script("n_workers=2, threads_per_worker=1", sleep)
    script = Script.write(tmp_path, source, via="flowbridge", env=script_env(root)).start()
    try:
        script.wait_for("running")
        pids = worker_pids(script)
        seconds = script.interrupt()
    finally:
        script.kill()
    assert_stopped(script, seconds, root, sleep)
    assert not [p for p in pids if procs.alive(p)], "Dask worker processes outlived the script"
    print(f"\nCtrl-C (flowbridge run, owned LocalCluster): exit after {seconds:.2f} s")


@pytest.mark.slow
def test_ctrl_c_python_asyncio_run_owned_local_cluster(tmp_path: Path) -> None:
    root, sleep = run_root(tmp_path), unique_sleep()
    source = asyncio_run_script("n_workers=2, threads_per_worker=1", sleep)
    script = Script.write(tmp_path, source, via="python", env=script_env(root)).start()
    try:
        script.wait_for("running")
        seconds = script.interrupt()
    finally:
        script.kill()
    assert_stopped(script, seconds, root, sleep)
    print(f"\nCtrl-C (python, asyncio.run, owned LocalCluster): exit after {seconds:.2f} s")


@pytest.mark.slow
async def test_ctrl_c_leaves_your_cli_cluster_up(tmp_path: Path, cli: CliCluster) -> None:
    root, sleep = run_root(tmp_path), unique_sleep()
    source = asyncio_run_script(f"address={cli.address!r}", sleep)
    script = Script.write(tmp_path, source, via="python", env=script_env(root)).start()
    try:
        await asyncio.to_thread(script.wait_for, "running")
        seconds = await asyncio.to_thread(script.interrupt)
    finally:
        script.kill()
    assert_stopped(script, seconds, root, sleep)  # the command ran on your worker: killed there
    assert cli.alive()
    await still_serves(cli.address)
    print(f"\nCtrl-C (python, your CLI cluster): exit after {seconds:.2f} s")


@pytest.mark.slow
def test_kill_9_of_the_driver_leaves_nothing(tmp_path: Path) -> None:
    root, sleep = run_root(tmp_path), unique_sleep()
    source = top_level_script("n_workers=2, threads_per_worker=1", sleep)
    script = Script.write(tmp_path, source, via="flowbridge", env=script_env(root)).start()
    try:
        script.wait_for("running")
        pids = worker_pids(script)
        assert script.proc is not None
        t0 = time.monotonic()
        os.kill(script.proc.pid, signal.SIGKILL)  # the driver only: no chance to clean up
        script.proc.wait(10)
    finally:
        script.kill()
    assert gone(sleep) == [], f"{sleep!r} outlived the killed driver"
    assert leftovers(str(root)) == [], "processes of flowbridge's cluster outlived the killed driver"
    deadline = time.monotonic() + 5
    while (left := [p for p in pids if procs.alive(p)] or list(root.iterdir())) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not left, f"left after kill -9 of the driver: {left}"
    print(f"\nkill -9 of the driver: everything gone after {time.monotonic() - t0:.2f} s")


# -- commands die with their task -------------------------------------------------------------


async def _started(command: str) -> None:
    deadline = time.monotonic() + QUICK
    while not running(command):
        assert time.monotonic() < deadline, f"{command!r} never started"
        await asyncio.sleep(0.05)


async def _commands_die_with_their_tasks(backend: DaskExecutionBackend, record: dict[str, float]) -> None:
    """One command after the other (a small cluster may run one at a time): cancel, timeout, shutdown."""
    cancelled, timed_out, at_shutdown = unique_sleep(), unique_sleep(), unique_sleep()
    flow = await asyncio.wait_for(WorkflowEngine.create(backend=backend), QUICK)
    try:

        @flow.executable_task
        def run(command: str) -> str:
            return command

        one = run(cancelled)
        await _started(cancelled)
        t0 = time.monotonic()
        one.cancel()
        with pytest.raises(asyncio.CancelledError):
            await one
        assert await asyncio.to_thread(gone, cancelled) == [], "cancel() left the command running"
        record["cancel_kill_s"] = time.monotonic() - t0

        two = flow.executable_task(timeout=8)(lambda: timed_out)()  # counted from submission: generous
        await _started(timed_out)
        with pytest.raises(TaskTimeout):
            await asyncio.wait_for(two, QUICK)
        assert await asyncio.to_thread(gone, timed_out) == [], "timeout= left the command running"

        three = run(at_shutdown)
        await _started(at_shutdown)
    finally:
        t0 = time.monotonic()
        await flow.shutdown(cancel=True)
        record["shutdown_s"] = time.monotonic() - t0
    assert record["shutdown_s"] < 8, f"shutdown(cancel=True) took {record['shutdown_s']:.1f} s"
    assert three.cancelled()
    assert running(at_shutdown) == [], "shutdown(cancel=True) returned with the command still running"


async def test_cancel_timeout_and_shutdown_kill_commands_on_an_owned_cluster() -> None:
    record: dict[str, float] = {}
    backend = DaskExecutionBackend(n_workers=1, threads_per_worker=3)
    await _commands_die_with_their_tasks(backend, record)
    assert backend.run_dir is not None and not backend.run_dir.exists()
    print(f"\nowned LocalCluster: {record}")


@pytest.mark.slow
async def test_cancel_timeout_and_shutdown_kill_commands_on_your_cluster(cli: CliCluster) -> None:
    record: dict[str, float] = {}
    await _commands_die_with_their_tasks(DaskExecutionBackend(address=cli.address), record)
    assert cli.alive()
    await still_serves(cli.address)
    print(f"\nyour CLI cluster: {record}")


async def test_shutdown_cancel_returns_soon_while_a_python_function_runs() -> None:
    backend = DaskExecutionBackend(n_workers=1, threads_per_worker=1)
    flow = await asyncio.wait_for(WorkflowEngine.create(backend=backend), QUICK)
    napping = flow.function_task(time.sleep)(60)
    await asyncio.sleep(1.0)
    pids = list((await backend.client.run(os.getpid)).values())
    for pid in pids:  # as a terminal's Ctrl-C reaches them (they share the driver's process group)
        os.kill(pid, signal.SIGINT)
    await asyncio.sleep(1.0)
    assert all(procs.alive(p) for p in pids), "a Dask worker process died of SIGINT"
    assert not napping.done()
    t0 = time.monotonic()
    await flow.shutdown(cancel=True)
    took = time.monotonic() - t0
    assert napping.cancelled()
    assert took < 8, f"shutdown(cancel=True) took {took:.1f} s with a function running"
    assert not [p for p in pids if procs.alive(p)], "the worker process outlived shutdown"
    print(f"\nshutdown(cancel=True) with a running function: {took:.2f} s")


# -- start-up failures say why, fast ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"n_worker": 2}, r"n_worker=2.*did you mean 'n_workers'"),
        ({"threads_per_workers": 1}, r"did you mean 'threads_per_worker'"),
        ({"n_workers": 0}, r"n_workers=0 must be an int >= 1"),
        ({"n_workers": "2"}, r"n_workers='2' must be an int >= 1"),
        ({"threads_per_worker": 1.5}, r"threads_per_worker=1.5 must be an int"),
        ({"processes": "yes"}, r"processes='yes' must be True or False"),
        ({"connect_timeout": 0, "address": "tcp://127.0.0.1:1"}, r"connect_timeout=0 must be"),
        ({"jobqueue": "slurm", "core": 1}, r"core=1.*did you mean 'cores'"),
        ({"jobqueue": "slurm", "cores": 0}, r"cores=0 must be an int >= 1"),
    ],
)
def test_options_are_checked_before_anything_starts(options: dict[str, Any], match: str) -> None:
    from flowbridge._registry import create

    t0 = time.monotonic()
    with pytest.raises(ConfigError, match=match):
        DaskExecutionBackend(**options)
    with pytest.raises(ConfigError, match=match):  # as a profile holds them
        create("dask", options)
    assert time.monotonic() - t0 < 5


async def test_missing_scheduler_file_fails_within_the_stated_wait(tmp_path: Path) -> None:
    missing = tmp_path / "scheduler.json"
    t0 = time.monotonic()
    with pytest.raises(FlowbridgeError, match=r"scheduler\.json.*does not exist \(waited 0\.5 s"):
        await WorkflowEngine.create(DaskExecutionBackend(scheduler_file=str(missing), connect_timeout=0.5))
    took = time.monotonic() - t0
    assert took < 3, f"a missing scheduler file took {took:.1f} s to report"
    with pytest.raises(FlowbridgeError, match="no such directory"):
        await WorkflowEngine.create(DaskExecutionBackend(scheduler_file=str(tmp_path / "nodir" / "s.json")))
    assert DaskExecutionBackend(scheduler_file=str(missing)).connect_timeout == 10.0  # the default wait


async def test_unreachable_address_fails_within_connect_timeout() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # free once closed: nobody listens there
    address = f"tcp://127.0.0.1:{port}"
    t0 = time.monotonic()
    with pytest.raises(FlowbridgeError, match=rf"cannot reach the Dask scheduler at {address} within 2 s"):
        await WorkflowEngine.create(DaskExecutionBackend(address=address, connect_timeout=2))
    took = time.monotonic() - t0
    assert took < BOUND, f"an unreachable address took {took:.1f} s to report"
    print(f"\nunreachable address: error after {took:.2f} s (connect_timeout=2; default 10)")


@pytest.mark.slow
def test_missing_main_guard_is_one_short_error(tmp_path: Path) -> None:
    root = run_root(tmp_path)
    source = """
    import asyncio
    from flowbridge import WorkflowEngine, DaskExecutionBackend

    async def main():
        async with WorkflowEngine(DaskExecutionBackend(n_workers=1, processes=True)) as flow:
            print(await flow.function_task(abs)(-1))

    asyncio.run(main())
    """
    script = Script.write(tmp_path, source, via="python", env=script_env(root)).start()
    t0 = time.monotonic()
    try:
        code = script.wait(QUICK)
    finally:
        script.kill()
    took = time.monotonic() - t0
    err = script.stderr
    assert code != 0
    assert 'if __name__ == "__main__":' in err and "flowbridge run" in err, err[-3000:]
    assert "Nanny failed to start" not in err
    assert len(err.splitlines()) < 60, f"{len(err.splitlines())} lines of stderr:\n{err}"
    assert took < 30
    assert leftovers(str(root)) == [] and list(root.iterdir()) == []


# -- Jupyter ------------------------------------------------------------------------------------


@pytest.mark.slow
def test_jupyter_interrupt_ends_the_cell_and_the_kernel_goes_on(tmp_path: Path) -> None:
    root, sleep = run_root(tmp_path), unique_sleep()
    kernel = Kernel(tmp_path, env=script_env(root))
    try:
        out, reply = kernel.run(
            """
            import asyncio, os
            from flowbridge import WorkflowEngine, DaskExecutionBackend
            flow = await WorkflowEngine.create(DaskExecutionBackend(n_workers=1, threads_per_worker=2))
            print("ready", await flow.function_task(abs)(-1))
            """
        )
        assert reply["status"] == "ok" and "ready 1" in out, (out, reply)
        msg = kernel.start(
            f"""
            from flowbridge.toolkit import procs
            sleeping = flow.executable_task(lambda: {sleep!r})()
            while not procs.find(text={sleep!r}):
                await asyncio.sleep(0.05)
            print("running", flush=True)
            await sleeping
            """
        )
        kernel.wait_output(msg, "running")
        seconds, out, reply = kernel.interrupt(msg)
        # ipykernel shows the cancelled top-level await as "CancelledError" (its reply may still say "ok").
        shown = f"{reply.get('ename', '')} {out}"
        assert "KeyboardInterrupt" in shown or "CancelledError" in shown, (out, reply)
        assert seconds < BOUND, f"the cell took {seconds:.1f} s to end after the interrupt"
        assert gone(sleep) == [], f"{sleep!r} outlived the interrupted cell"  # the awaited task was cancelled
        out, reply = kernel.run(
            """
            await flow.shutdown(cancel=True)
            async with WorkflowEngine(DaskExecutionBackend(n_workers=1)) as again:
                print("again", await again.function_task(abs)(-2))
            """
        )
        assert reply["status"] == "ok" and "again 2" in out, (out, reply)
        assert gone(sleep) == [], f"{sleep!r} outlived the interrupted cell and the shutdown"
        print(f"\nJupyter interrupt: cell ended {seconds:.2f} s after interrupt_kernel()")
    finally:
        kernel.close()
    assert leftovers(str(root)) == []


# -- SLURM through dask-jobqueue --------------------------------------------------------------------


def _jobs_named(name: str) -> list[str]:
    out = subprocess.run(
        ["squeue", "-h", "-n", name, "-t", "PENDING,RUNNING,COMPLETING,CONFIGURING,SUSPENDED", "-o", "%i"],
        check=True,
        capture_output=True,
        text=True,
        timeout=30,
    ).stdout
    return out.split()


@pytest.mark.slurm
@pytest.mark.slow
@pytest.mark.timeout(240)
def test_ctrl_c_with_a_slurm_jobqueue_cluster_leaves_no_job(slurm: Any, tmp_path: Path) -> None:
    root, sleep = run_root(tmp_path), unique_sleep()
    name = f"fb-dask-stop-{uuid.uuid4().hex[:8]}"
    options = (
        f"jobqueue='slurm', jobs=1, queue={slurm.partition!r}, cores=2, memory='1GB', "
        f"walltime='00:05:00', job_name={name!r}"
    )
    source = top_level_script(options, sleep).replace(
        'print("workers", *(await backend.client.run(os.getpid)).values(), flush=True)',
        "await backend.client.wait_for_workers(1)",
    )
    env = {**script_env(root), "SLURM_CONF": str(slurm.conf)}
    script = Script.write(tmp_path, source, via="flowbridge", env=env).start()
    try:
        script.wait_for("running", timeout=120)
        assert _jobs_named(name), "no SLURM job ran the workers"
        seconds = script.interrupt()
    finally:
        script.kill()
    assert_stopped(script, seconds, root, sleep)
    deadline = time.monotonic() + 30
    while (jobs := _jobs_named(name)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert jobs == [], f"SLURM jobs left after Ctrl-C: {jobs}"
    print(f"\nCtrl-C (flowbridge run, SLURMCluster): exit after {seconds:.2f} s; squeue empty")
