"""ConformanceSuite: the semantics table of DESIGN.md as tests, for any adapter."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from flowbridge import (
    DependencyFailed,
    Resources,
    TaskFailed,
    TaskState,
    TaskTimeout,
    UnsupportedResource,
    WorkflowEngine,
)

from .bodies import add, async_add, fail, flaky, pid, sleep_then, sleep_touch, total, touch

# The bodies are re-exported for the tests that used them from here.
__all__ = ["ConformanceSuite", "add", "async_add", "fail", "flaky", "pid"]
__all__ += ["sleep_then", "sleep_touch", "total", "touch"]

MAIN_SOURCE = """
class FlowbridgePoint:
    def __init__(self, x):
        self.x = x

def flowbridge_make_point(x):
    return FlowbridgePoint(x)
"""

# Bounds on waiting, so a broken adapter fails a test instead of hanging it.
QUICK = 60.0
# Long enough to be still running when cancelled; short enough that a backend which
# cannot stop running work (threads) is not held up for long at shutdown.
LONG = 3.0


class ConformanceSuite:
    """Subclass with a ``backend`` fixture returning a fresh adapter for each test.

    Class attributes tune the suite to what the backend claims: ``unsupported``
    is a Resources the backend must refuse; ``cancel_running`` says whether
    cancelling a running task stops its work (its future is cancelled either way).
    A backend that lacks a feature removes that case, e.g.
    ``test_executable_failure = None``, rather than skipping it.
    """

    unsupported: Resources = Resources(extra={"flowbridge_conformance_no_such_option": 1})
    cancel_running = True

    @pytest.fixture
    def backend(self) -> Any:  # pragma: no cover - provided by subclasses
        raise NotImplementedError("a ConformanceSuite subclass must define a `backend` fixture")

    @pytest_asyncio.fixture
    async def flow(self, backend: Any) -> Any:
        engine = await asyncio.wait_for(WorkflowEngine.create(backend=backend), 300)
        yield engine
        await asyncio.wait_for(engine.shutdown(cancel=True), QUICK)

    # -- values and errors -----------------------------------------------------------------

    @pytest.mark.asyncio
    async def test_value_and_async_body(self, flow: WorkflowEngine) -> None:
        plain, coro = flow.function_task(add), flow.function_task(async_add)
        assert await asyncio.wait_for(plain(1, 2), QUICK) == 3
        assert await asyncio.wait_for(coro("a", "b"), QUICK) == "ab"

    @pytest.mark.asyncio
    async def test_exception_is_reraised(self, flow: WorkflowEngine) -> None:
        task = flow.function_task(fail)("root cause")
        with pytest.raises(KeyError, match="root cause"):
            await asyncio.wait_for(task, QUICK)
        assert task.state is TaskState.FAILED

    @pytest.mark.asyncio
    async def test_futures_inside_containers_are_dependencies(self, flow: WorkflowEngine) -> None:
        a, s = flow.function_task(add), flow.function_task(total)
        x, y = a(1, 1), a(2, 2)
        assert await asyncio.wait_for(s([x, y, 10]), QUICK) == 16
        assert await asyncio.wait_for(s((x, y)), QUICK) == 6
        assert await asyncio.wait_for(s({"x": x, "y": y}), QUICK) == 6
        assert await asyncio.wait_for(s({x, y}), QUICK) == 6
        assert await asyncio.wait_for(a(b=y, a=x), QUICK) == 6

    @pytest.mark.asyncio
    async def test_chain(self, flow: WorkflowEngine) -> None:
        a = flow.function_task(add)
        value = a(0, 1)
        for _ in range(20):
            value = a(value, 1)
        assert await asyncio.wait_for(value, QUICK) == 21

    @pytest.mark.asyncio
    async def test_failed_dependency_fails_dependents_without_running_them(
        self, flow: WorkflowEngine, tmp_path: Path
    ) -> None:
        marker = tmp_path / "dependent-ran"
        root = flow.function_task(fail)("root")
        child = flow.function_task(touch)(str(marker), root)
        grandchild = flow.function_task(add)(child, 1)
        with pytest.raises(DependencyFailed) as info:
            await asyncio.wait_for(grandchild, QUICK)
        error = info.value
        assert isinstance(error.root, KeyError)
        chain: list[BaseException] = []
        cause: BaseException | None = error
        while cause is not None:
            chain.append(cause)
            cause = cause.__cause__
        assert any(c is error.root for c in chain), chain
        assert root.uid in str(error) and child.uid in str(error)
        assert child.state is TaskState.FAILED and not marker.exists()

    # -- cancellation and time ---------------------------------------------------------------

    @pytest.mark.asyncio
    async def test_cancel_pending_cancels_dependents(self, flow: WorkflowEngine) -> None:
        slow = flow.function_task(sleep_then)(1.0, 1)
        waiting = flow.function_task(add)(slow, 1)
        after = flow.function_task(add)(waiting, 1)
        assert waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(after, QUICK)
        assert waiting.state is TaskState.CANCELLED and after.state is TaskState.CANCELLED
        assert await asyncio.wait_for(slow, QUICK) == 1

    @pytest.mark.asyncio
    async def test_cancel_running(self, flow: WorkflowEngine, tmp_path: Path) -> None:
        marker = tmp_path / "finished"
        task = flow.function_task(sleep_touch)(LONG, str(marker))
        after = flow.function_task(add)(task, 1)
        await asyncio.sleep(0.5)
        assert task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(after, QUICK)
        assert task.state is TaskState.CANCELLED and after.state is TaskState.CANCELLED
        if self.cancel_running:  # the work itself was stopped before it could finish
            await asyncio.sleep(LONG + 1)
            assert not marker.exists()

    @pytest.mark.asyncio
    async def test_timeout(self, flow: WorkflowEngine) -> None:
        task = flow.function_task(timeout=0.5)(sleep_then)(LONG)
        with pytest.raises(TaskTimeout, match=task.uid):
            await asyncio.wait_for(task, QUICK)

    @pytest.mark.asyncio
    async def test_wait_for_cancels_the_task(self, flow: WorkflowEngine) -> None:
        task = flow.function_task(sleep_then)(LONG)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(task, 0.3)
        assert task.state is TaskState.CANCELLED

    @pytest.mark.asyncio
    async def test_retries(self, flow: WorkflowEngine, tmp_path: Path) -> None:
        counter = str(tmp_path / "attempts")
        task = flow.function_task(retries=2)(flaky)(counter, 2)
        assert await asyncio.wait_for(task, QUICK) == 3
        counter2 = str(tmp_path / "attempts2")
        task = flow.function_task(retries=1)(flaky)(counter2, 5)
        with pytest.raises(RuntimeError, match="attempt 2 fails"):
            await asyncio.wait_for(task, QUICK)

    @pytest.mark.asyncio
    async def test_records_with_worker_times(self, flow: WorkflowEngine, tmp_path: Path) -> None:
        """The record of a known DAG: edges, a retried task's two attempts, times taken where the body ran."""
        import socket
        import time

        t_add = flow.function_task(add)
        a = t_add(1, 1)
        b, c = t_add(a, 1), t_add(a, 2)
        d = t_add(b, c)
        retried = flow.function_task(retries=1)(flaky)(str(tmp_path / "attempts"), 1)
        where = flow.function_task(pid)()
        before = time.time()
        values = await asyncio.wait_for(asyncio.gather(d, retried, where), QUICK)
        assert list(values) == [7, 2, await where]
        records = {r.uid: r for r in flow.records}
        assert sorted(uid for uid, _ in records[d.uid].deps) == sorted([b.uid, c.uid])
        assert [uid for uid, _ in records[b.uid].deps] == [a.uid]
        first, second = records[retried.uid].attempts
        assert (first.outcome, first.error_type, second.outcome) == ("FAILED", "RuntimeError", "DONE")
        slack = 0.05  # the driver's clock is read through perf_counter: allow for drift
        for task in (d, retried, where):
            record = records[task.uid]
            for attempt in record.attempts:
                assert attempt.started is not None and attempt.finished is not None, (record, attempt.as_dict())
                assert attempt.submitted - slack <= attempt.started <= attempt.finished
                assert attempt.finished <= (attempt.ended or time.time()) + slack
                assert attempt.host == socket.gethostname() and attempt.worker
        assert records[where.uid].attempts[0].pid == await where  # measured in the process that ran the body
        assert (records[d.uid].attempts[0].started or 0.0) >= before - 1.0

    # -- executables ------------------------------------------------------------------------

    @pytest.mark.asyncio
    async def test_executable_worker_times(self, flow: WorkflowEngine) -> None:
        """An executable's attempt names the command's own process and when it ran."""
        import time

        before = time.time()
        out = await asyncio.wait_for(flow.executable_task(lambda: "echo $$", name="echo")(), QUICK)
        (attempt,) = flow.records[-1].attempts
        assert attempt.worker == "command" and attempt.pid == int(out.strip()), attempt.as_dict()
        assert attempt.started is not None and attempt.finished is not None
        assert before - 0.05 <= attempt.started <= attempt.finished <= (attempt.ended or time.time()) + 0.05

    @pytest.mark.asyncio
    async def test_executable_str_and_argv(self, flow: WorkflowEngine) -> None:

        @flow.executable_task
        def shell(word: str) -> str:
            return f"echo {word} | tr a-z A-Z"

        @flow.executable_task
        async def argv(word: str) -> list[str]:
            return ["printf", "%s|", word, "two words"]

        assert await asyncio.wait_for(shell("hello"), QUICK) == "HELLO\n"
        assert await asyncio.wait_for(argv(shell("x")), QUICK) == "X\n|two words|"

    @pytest.mark.asyncio
    async def test_executable_failure(self, flow: WorkflowEngine) -> None:
        task = flow.executable_task(lambda: "echo oops >&2; exit 3")()
        with pytest.raises(TaskFailed) as info:
            await asyncio.wait_for(task, QUICK)
        assert info.value.exit_code == 3 and "oops" in info.value.stderr

    @pytest.mark.asyncio
    async def test_executable_bad_return(self, flow: WorkflowEngine) -> None:
        bad: Any
        for bad in (None, 3, "", []):
            task = flow.executable_task(name="bad")(lambda bad=bad: bad)()
            with pytest.raises(TypeError, match="bad"):
                await asyncio.wait_for(task, QUICK)

    # -- placement -----------------------------------------------------------------------

    @pytest.mark.asyncio
    async def test_unsupported_resource(self, flow: WorkflowEngine) -> None:
        adapter = next(iter(flow.backends.values()))
        with pytest.raises(UnsupportedResource, match=repr(adapter.name)):
            task = flow.function_task(resources=self.unsupported)(add)(1, 1)
            await asyncio.wait_for(task, QUICK)

    @pytest.mark.asyncio
    async def test_closure_runs(self, flow: WorkflowEngine) -> None:
        offset = 40

        def local(x: int) -> int:  # a closure: only serialisation by value can ship it
            return x + offset

        assert await asyncio.wait_for(flow.function_task(local)(2), QUICK) == 42

    @pytest.mark.asyncio
    async def test_many_tasks(self, flow: WorkflowEngine) -> None:
        a = flow.function_task(add)
        results = await asyncio.wait_for(asyncio.gather(*(a(i, i) for i in range(200))), QUICK * 2)
        assert results == [2 * i for i in range(200)]

    @pytest.mark.asyncio
    async def test_main_class_comes_back_as_the_drivers_own(
        self, flow: WorkflowEngine, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # As in a script: a class and a task function defined in __main__; the worker
        # builds an instance; the driver must get an instance of its own class back.
        namespace: dict[str, Any] = {"__name__": "__main__"}
        exec(MAIN_SOURCE, namespace)
        for name in ("FlowbridgePoint", "flowbridge_make_point"):
            monkeypatch.setattr(sys.modules["__main__"], name, namespace[name], raising=False)
        point = await asyncio.wait_for(flow.function_task(namespace["flowbridge_make_point"])(3), QUICK)
        assert type(point) is namespace["FlowbridgePoint"] and point.x == 3

    # -- blocks and shutdown -----------------------------------------------------------------

    @pytest.mark.asyncio
    async def test_block(self, flow: WorkflowEngine) -> None:
        a = flow.function_task(add)

        @flow.block
        async def pipeline(start: int) -> Any:
            return await a(await a(start, 1), 1)

        first = pipeline(0)
        second = pipeline(first)
        assert await asyncio.wait_for(second, QUICK) == 4

    @pytest.mark.asyncio
    async def test_cancel_block_cancels_its_tasks(self, flow: WorkflowEngine) -> None:
        inner: list[Any] = []

        @flow.block
        async def long_block() -> None:
            task = flow.function_task(sleep_then)(LONG)
            inner.append(task)
            await task

        block = long_block()
        while not inner:
            await asyncio.sleep(0.01)
        block.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(block, QUICK)
        assert inner[0].state is TaskState.CANCELLED

    @pytest.mark.asyncio
    async def test_shutdown_settles_every_future(self, backend: Any) -> None:
        engine = await asyncio.wait_for(WorkflowEngine.create(backend=backend), 300)
        tasks = [engine.function_task(sleep_then)(LONG) for _ in range(4)]
        waiting = engine.function_task(add)(tasks[0], 1)
        await asyncio.sleep(0.3)
        await asyncio.wait_for(engine.shutdown(cancel=True), QUICK)
        assert all(t.done() for t in [*tasks, waiting])
        assert all(t.state is TaskState.CANCELLED for t in [*tasks, waiting])
        with pytest.raises(RuntimeError, match="shut down"):
            engine.function_task(add)(1, 1)
