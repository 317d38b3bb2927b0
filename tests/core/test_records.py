"""Task records: one per task, written by the one transition function, read by reports and graphs."""

import asyncio
import logging
import os
import threading

import pytest

from flowbridge import ConcurrentExecutionBackend, DependencyFailed, TaskState, WorkflowEngine
from flowbridge._record import IllegalTransition, transition
from flowbridge.testing.fake import FakeBackend, LostValue


def inc(x=0):
    return x + 1


def add(a, b):
    return a + b


def boom(*args):
    raise ValueError("boom")


def flaky(marker):
    """Fails on its first call, succeeds afterwards (the marker file survives across processes)."""
    if not os.path.exists(marker):
        open(marker, "w").close()
        raise OSError("first attempt fails")
    return "second time lucky"


@pytest.fixture(params=["threads", "processes"])
def backend(request):
    return ConcurrentExecutionBackend(processes=request.param == "processes", max_workers=2)


async def test_records_of_a_known_dag(backend, tmp_path):
    async with WorkflowEngine(backend=backend) as flow:
        t_inc, t_add = flow.function_task(inc), flow.function_task(add)
        t_flaky = flow.function_task(flaky, retries=1)
        t_boom = flow.function_task(boom)
        a = t_inc()
        b = t_inc(a)
        c = t_add(a, b)
        retried = t_flaky(str(tmp_path / "marker"))
        failed = t_boom()
        after_failed = t_inc(failed)
        assert await c == 3
        assert await retried == "second time lucky"
        with pytest.raises(ValueError):
            await failed
        with pytest.raises(DependencyFailed):
            await after_failed

    records = {r.uid: r for r in flow.records}
    assert list(records) == [a.uid, b.uid, c.uid, retried.uid, failed.uid, after_failed.uid]  # call order
    rc = records[c.uid]
    assert rc.deps == [(a.uid, "value"), (b.uid, "value")] or rc.deps == [(b.uid, "value"), (a.uid, "value")]
    assert records[b.uid].deps == [(a.uid, "value")]
    assert records[a.uid].deps == []
    assert (rc.name, rc.kind, rc.route, rc.adapter, rc.backend) == (
        "add",
        "function",
        "default",
        "concurrent",
        "concurrent",
    )
    assert rc.state is TaskState.DONE and c.record is rc
    assert [s for s, _ in rc.transitions] == ["PENDING", "RUNNING", "DONE"]
    times = [t for _, t in rc.transitions]
    assert times == sorted(times)
    (attempt,) = rc.attempts
    assert attempt.outcome == "DONE" and attempt.error_type is None
    assert attempt.submitted <= attempt.ended
    # taken where the body ran: a pool thread, or a process of the pool
    assert attempt.started <= attempt.finished and attempt.where == f"{attempt.host}:{attempt.pid}/{attempt.worker}"
    # a dependent is handed over only after its dependencies ended
    assert attempt.submitted >= records[a.uid].ended and attempt.submitted >= records[b.uid].ended

    first, second = records[retried.uid].attempts
    assert (first.number, first.outcome, first.error_type, first.error_message) == (
        1,
        "FAILED",
        "OSError",
        "first attempt fails",
    )
    assert (second.number, second.outcome) == (2, "DONE")
    assert first.ended <= second.submitted
    assert records[retried.uid].state is TaskState.DONE

    rf = records[failed.uid]
    assert (rf.state, rf.error_type, rf.error_message) == (TaskState.FAILED, "ValueError", "boom")
    assert rf.attempts[-1].outcome == "FAILED"
    rd = records[after_failed.uid]
    assert rd.state is TaskState.FAILED and rd.attempts == []  # never reached the backend
    assert rd.deps == [(failed.uid, "value")]
    assert (rd.error_type, rd.root_task, rd.root_type, rd.root_message) == (
        "DependencyFailed",
        f"{failed.uid} (boom)",
        "ValueError",
        "boom",
    )


async def test_cancelled_task_and_its_dependent_are_recorded():
    gate = threading.Event()
    async with WorkflowEngine() as flow:
        slow = flow.function_task(lambda: gate.wait(10))()
        waiting = flow.function_task(inc)(slow)
        await asyncio.sleep(0.05)
        assert slow.state is TaskState.RUNNING
        slow.cancel()
        gate.set()
        with pytest.raises(asyncio.CancelledError):
            await waiting
    assert slow.record.state is TaskState.CANCELLED
    assert slow.record.attempts[-1].outcome == "CANCELLED"
    assert waiting.record.state is TaskState.CANCELLED and waiting.record.attempts == []
    assert [s for s, _ in slow.record.transitions] == ["PENDING", "RUNNING", "CANCELLED"]


async def test_block_children_name_their_parent_and_workflow():
    async with WorkflowEngine() as flow:
        t_inc = flow.function_task(inc)

        @flow.block
        async def pipeline(x):
            return await t_inc(await t_inc(x))

        async with flow.workflow_scope("wf-test"):
            blk = pipeline(1)
        assert await blk == 3
    block_rec, *children = flow.records
    assert (block_rec.uid, block_rec.kind, block_rec.backend, block_rec.parent) == (blk.uid, "block", "driver", None)
    assert block_rec.workflow_id == "wf-test"
    assert len(children) == 2
    assert all(r.parent == blk.uid for r in children)
    assert all(r.workflow_id == "wf-test" for r in children)
    assert block_rec.attempts[0].submitted <= children[0].attempts[0].submitted
    assert children[-1].ended <= block_rec.ended


async def test_final_state_never_changes_and_illegal_changes_are_refused():
    async with WorkflowEngine() as flow:
        done = flow.function_task(inc)()
        await done
        with pytest.raises(IllegalTransition, match="DONE -> FAILED is not a legal state change"):
            transition(done, TaskState.FAILED)
        assert done.state is TaskState.DONE and done.record.state is TaskState.DONE
        assert done.cancel() is False
        assert [s for s, _ in done.record.transitions] == ["PENDING", "RUNNING", "DONE"]
        gate = asyncio.get_running_loop().create_future()
        pending = flow.function_task(inc)(gate)
        await asyncio.sleep(0)
        with pytest.raises(IllegalTransition, match="PENDING -> DONE"):
            transition(pending, TaskState.DONE)
        assert pending.state is TaskState.PENDING
        gate.set_result(1)
        assert await pending == 2


async def test_record_false_runs_the_same_and_keeps_no_record():
    async with WorkflowEngine(record=False) as flow:
        a = flow.function_task(inc)()
        b = flow.function_task(add)(a, a)
        assert await b == 2
        assert b.state is TaskState.DONE and b.record is None
        with pytest.raises(RuntimeError, match="record=False"):
            flow.records  # noqa: B018


# -- an adapter with native dependencies and remote results, no framework needed ----------


async def test_native_edges_are_recorded_as_native():
    async with WorkflowEngine(backend=FakeBackend()) as flow:
        a = flow.function_task(inc)()
        b = flow.function_task(inc)(a)
        assert await b == 2
    assert b.record.deps == [(a.uid, "native")]
    assert a.record.backend == "fake"
    # b's value was fetched: its worker times came with it; a's never was: its fields stay empty
    assert b.record.attempts[0].worker.startswith("fake") and a.record.attempts[0].started is None


async def test_a_native_chain_is_handed_over_at_once_and_a_failure_fails_its_dependents():
    gate = threading.Event()
    backend = FakeBackend()
    async with WorkflowEngine(backend=backend) as flow:
        first = flow.function_task(lambda: gate.wait(10) and 1, name="first")()
        chain = [first]
        for _ in range(5):
            chain.append(flow.function_task(inc)(chain[-1]))
        await asyncio.sleep(0.05)
        assert backend.submitted == 6  # all handed over while the first still runs: native edges
        assert [t.state for t in chain] == [TaskState.RUNNING] * 6
        gate.set()
        assert await chain[-1] == 6
        broken = flow.function_task(boom)()
        after = flow.function_task(inc)(broken)
        with pytest.raises(DependencyFailed) as info:
            await after
    assert info.value.root_cause is not None and after.record.root_task.startswith(broken.uid)


async def test_a_value_lost_after_done_raises_on_await_and_the_state_stays_done(caplog):
    async with WorkflowEngine(backend=FakeBackend(lose=True)) as flow:
        a = flow.function_task(inc)()
        await asyncio.sleep(0.05)
        assert a.state is TaskState.DONE
        with caplog.at_level(logging.WARNING, logger="flowbridge.task"), pytest.raises(LostValue):
            await a
        assert a.state is TaskState.DONE
    assert a.record.state is TaskState.DONE
    assert a.record.lost == ("LostValue", "the worker holding the value died")
    assert [s for s, _ in a.record.transitions] == ["PENDING", "RUNNING", "DONE"]
    assert any("value was lost" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize("processes", [False, True], ids=["threads", "processes"])
async def test_an_executable_attempt_names_its_command_process(processes):
    async with WorkflowEngine(ConcurrentExecutionBackend(processes=processes)) as flow:
        echo = flow.executable_task(lambda: "echo $$", name="echo")
        shell_pid = int((await echo()).strip())
        (attempt,) = flow.records[0].attempts
    assert attempt.worker == "command" and attempt.pid == shell_pid != os.getpid()
    assert attempt.submitted - 0.05 <= attempt.started <= attempt.finished <= attempt.ended + 0.05
