"""Engine behaviour beyond the conformance suite: lifetime, isolation, routing, manners."""

import asyncio
import concurrent.futures
import logging
import os
import signal
import threading

import pytest

from flowbridge import ConcurrentExecutionBackend, FlowbridgeError, TaskState, WorkflowEngine
from flowbridge.adapter import Adapter


def double(x):
    return 2 * x


async def test_sync_constructor_inside_a_running_loop_and_async_with():
    flow = WorkflowEngine()  # as seed 001 writes it, inside a loop
    assert await flow.function_task(double)(4) == 8
    await flow.shutdown()
    async with WorkflowEngine(backend="concurrent") as flow2:
        assert await flow2.function_task(double)(5) == 10


async def test_async_with_waits_for_unawaited_tasks():
    async with WorkflowEngine() as flow:
        task = flow.function_task(lambda: (threading.Event().wait(0.2), "finished")[1])()
    assert task.state is TaskState.DONE and task.result() == "finished"


def test_plain_synchronous_use_runs_its_own_loop():
    with WorkflowEngine() as flow:
        a = flow.function_task(double)(3)
        b = flow.function_task(double)(a)
        assert b.result(timeout=10) == 12
        assert a.state is TaskState.DONE
    assert not any(t.name == "flowbridge-loop" for t in threading.enumerate())


async def test_result_with_timeout_from_another_thread():
    async with WorkflowEngine() as flow:
        task = flow.function_task(double)(21)
        assert await asyncio.to_thread(task.result, 10) == 42
        slow = flow.function_task(lambda: threading.Event().wait(1))()
        with pytest.raises(TimeoutError, match="did not finish within 0.05 s"):
            await asyncio.to_thread(slow.result, 0.05)
        await slow


async def test_two_engines_share_nothing():
    async with WorkflowEngine() as one, WorkflowEngine() as two:
        a, b = one.function_task(double)(1), two.function_task(double)(1)
        assert a.uid == b.uid == "task.000001"  # ids are per engine, not global
        assert await a == await b == 2
    assert one.backends["default"] is not two.backends["default"]


async def test_routing_with_backends():
    cpu, other = ConcurrentExecutionBackend(), ConcurrentExecutionBackend(max_workers=1)
    async with WorkflowEngine(backends={"cpu": cpu, "io": other}) as flow:
        where = flow.function_task(lambda: threading.current_thread().name)
        pinned = flow.function_task(backend="io")(lambda: threading.current_thread().name)
        assert (await where()).startswith("flowbridge")
        assert await pinned() == (await pinned())
        assert list(flow.backends) == ["cpu", "io"]


async def test_foreign_futures_are_dependencies():
    async with WorkflowEngine() as flow:
        loop = asyncio.get_running_loop()
        plain = loop.create_future()
        with concurrent.futures.ThreadPoolExecutor(1) as pool:
            threaded = pool.submit(lambda: 5)
            task = flow.function_task(lambda a, b: a + b)(plain, threaded)
            await asyncio.sleep(0.05)
            assert task.state is TaskState.PENDING
            plain.set_result(1)
            assert await task == 6


async def test_states_and_exception_accessor():
    async with WorkflowEngine() as flow:
        gate = asyncio.get_running_loop().create_future()
        task = flow.function_task(double)(gate)
        assert task.state is TaskState.PENDING and str(task.state) == "PENDING"
        gate.set_result(1)
        assert await task == 2 and task.exception() is None
        assert repr(task).startswith("<TaskFuture task.000001 'double' DONE")


async def test_backend_that_fails_to_start_fails_its_tasks():
    class Broken(Adapter):
        name = "broken"
        capabilities = frozenset({"functions"})

        async def start(self):
            raise OSError("no cluster here")

    flow = WorkflowEngine(backend=Broken())
    task = flow.function_task(double)(1)
    with pytest.raises(FlowbridgeError, match="'broken' failed to start: OSError: no cluster here"):
        await task
    with pytest.raises(FlowbridgeError, match="failed to start"):
        await flow.start()
    await flow.shutdown()


async def test_adapter_submit_error_lands_on_the_future():
    class Refuses(Adapter):
        name = "refuses"
        capabilities = frozenset({"functions"})

        def submit(self, task):
            raise RuntimeError(f"cannot take {task.name}")

    async with WorkflowEngine(backend=Refuses()) as flow:
        with pytest.raises(RuntimeError, match="cannot take double"):
            await flow.function_task(double)(1)


def test_adapter_base_validates_class_attributes():
    with pytest.raises(TypeError, match="unknown entries \\['teleport'\\]"):
        type("Bad", (Adapter,), {"name": "bad", "capabilities": frozenset({"teleport"})})
    with pytest.raises(TypeError, match="supported_resources has unknown fields"):
        type("Bad", (Adapter,), {"name": "bad", "supported_resources": frozenset({"disk"})})


def test_resources_are_declared_once_and_capabilities_follow_from_them():
    caps, supported = frozenset({"functions"}), frozenset({"ranks", "gpus"})
    mine = type("Mine", (Adapter,), {"name": "mine", "capabilities": caps, "supported_resources": supported})
    assert mine.capabilities == {"functions", "mpi", "resources.gpus"}
    child = type("Child", (mine,), {"supported_resources": frozenset({"cores"})})  # inherits, re-derives
    assert child.capabilities == {"functions", "resources.cores"}
    with pytest.raises(TypeError, match="declared once, in supported_resources"):
        type("Twice", (Adapter,), {"name": "twice", "capabilities": frozenset({"functions", "resources.cores"})})


async def test_user_executor_is_left_open_and_owned_one_is_closed():
    mine = concurrent.futures.ThreadPoolExecutor(2)
    async with WorkflowEngine(backend=ConcurrentExecutionBackend(mine)) as flow:
        assert await flow.function_task(double)(2) == 4
    assert mine.submit(double, 3).result() == 6  # still usable: flowbridge did not create it
    mine.shutdown()
    owned = ConcurrentExecutionBackend()
    async with WorkflowEngine(backend=owned) as flow:
        await flow.function_task(double)(2)
    with pytest.raises(RuntimeError, match="after shutdown"):
        owned.executor.submit(double, 1)


async def test_cancelled_running_command_is_killed(tmp_path):
    async with WorkflowEngine() as flow:
        pidfile = tmp_path / "pid"
        task = flow.executable_task(lambda: f"echo $$ > {pidfile}; exec sleep 30")()
        while not pidfile.exists() or not pidfile.read_text().strip():
            await asyncio.sleep(0.02)
        pid = int(pidfile.read_text())
        task.cancel()
        for _ in range(200):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            await asyncio.sleep(0.02)
        else:
            pytest.fail("the cancelled command is still running")


async def test_manners_no_handlers_no_signal_handlers_no_litter(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGCHLD)}
    async with WorkflowEngine() as flow:
        await flow.executable_task(lambda: "echo hi")()
        await flow.function_task(double)(1)
    assert {s: signal.getsignal(s) for s in before} == before
    assert logging.getLogger("flowbridge").handlers == []
    assert list(tmp_path.iterdir()) == []


async def test_retry_logs_through_the_flowbridge_logger(tmp_path, caplog):
    counter = tmp_path / "n"

    def flaky():
        n = int(counter.read_text()) + 1 if counter.exists() else 1
        counter.write_text(str(n))
        if n < 2:
            raise OSError("transient")
        return n

    caplog.set_level(logging.INFO, logger="flowbridge")
    async with WorkflowEngine() as flow:
        assert await flow.function_task(retries=1)(flaky)() == 2
    assert any(r.name == "flowbridge.task" and "retry 1 of 1" in r.getMessage() for r in caplog.records)


async def test_dependency_failure_reaches_deep_chains_without_recursion_errors():
    async with WorkflowEngine() as flow:

        def boom():
            raise KeyError("root")

        link = flow.function_task(double)
        head = flow.function_task(boom)()
        tail = head
        for _ in range(3000):
            tail = link(tail)
        with pytest.raises(FlowbridgeError) as info:
            await tail
        assert isinstance(info.value.root, KeyError)


def die_once(counter):
    from pathlib import Path

    path = Path(counter)
    attempt = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(attempt))
    if attempt == 1:
        os._exit(7)  # the worker process dies, as an OOM kill would take it
    return attempt


async def test_dead_process_worker_is_worker_lost_or_retried(tmp_path):
    from flowbridge import WorkerLost

    async with WorkflowEngine(backend=ConcurrentExecutionBackend(processes=True, max_workers=1)) as flow:
        with pytest.raises(WorkerLost, match="died"):
            await flow.function_task(die_once)(str(tmp_path / "a"))
        assert await flow.function_task(double)(2) == 4  # the pool was renewed
        assert await flow.function_task(retries=1)(die_once)(str(tmp_path / "b")) == 2


def test_close_twice_and_shutdown_after_close_are_no_ops():
    flow = WorkflowEngine()
    assert flow.function_task(double)(1).result(timeout=10) == 2
    flow.close()
    flow.close()
    asyncio.run(flow.shutdown())


async def test_future_of_another_loop_fails_the_task_not_the_engine():
    other = asyncio.new_event_loop()
    try:
        foreign = other.create_future()
        async with WorkflowEngine() as flow:
            task = flow.function_task(double)(foreign)
            with pytest.raises(ValueError, match="future of another event loop"):
                await task
    finally:
        other.close()


async def test_cancelling_shutdown_overtakes_a_waiting_one():
    flow = await WorkflowEngine.create()
    gate = asyncio.get_running_loop().create_future()
    task = flow.function_task(double)(gate)
    waiting = asyncio.ensure_future(flow.shutdown())
    await asyncio.sleep(0.05)
    assert not waiting.done()
    await asyncio.wait_for(flow.shutdown(cancel=True), 10)
    await asyncio.wait_for(waiting, 10)
    assert task.state is TaskState.CANCELLED
