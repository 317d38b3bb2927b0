"""RADICAL-Pilot through flowbridge vs RADICAL-Pilot used directly, on the same warm pilot.

    python benchmarks/bench_radical.py                      # 200 tasks per run, best of 3
    python benchmarks/bench_radical.py --quick --repeat 1   # smoke run (50 tasks)
    python benchmarks/bench_radical.py --check              # exit 1 when a target is missed

One pilot on local.localhost serves both contenders: the one that
``RadicalExecutionBackend({'resource': 'local.localhost'})`` starts (with its RAPTOR
master and worker). ``native rp`` hands all TaskDescriptions to the TaskManager in one
``submit_tasks`` call and waits with ``wait_tasks`` (on a thread, so the loop is free);
``flowbridge`` submits the same work through a ``WorkflowEngine`` on that pilot and
awaits every task future. Executables run ``/bin/true``; functions are no-ops run by
RAPTOR (flowbridge ships them by value and sends the outcome back pickled).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from harness import Case, best_of, report, run

NATIVE, FB = "native rp", "flowbridge"
EXECUTABLE_LIMIT = 1.2  # issue #5: 200 executables on a warm pilot
FUNCTION_LIMIT = 1.2


def main_noop() -> Any:
    """A no-op as a script's ``__main__`` defines it: both contenders ship it by value."""
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec("def noop():\n    return None\n", namespace)
    return namespace["noop"]


async def measure(owner: Any, n: int, repeat: int) -> list[Case]:
    """Both contenders on the pilot, TaskManager and RAPTOR master of a started backend."""
    from flowbridge import RadicalExecutionBackend, WorkflowEngine
    from flowbridge_radical._environ import import_rp

    rp = import_rp()
    tmgr, raptor = owner.task_manager, owner.raptor
    noop = main_noop()
    flow = await WorkflowEngine.create(
        backend=RadicalExecutionBackend(pilot=owner.pilot, task_manager=tmgr, raptor=raptor)
    )
    fb_true = flow.executable_task(lambda: "/bin/true")
    fb_noop = flow.function_task(noop)

    async def native_executables() -> None:
        tds = [rp.TaskDescription({"executable": "/bin/sh", "arguments": ["-c", "/bin/true"]}) for _ in range(n)]
        tasks = tmgr.submit_tasks(tds)
        await asyncio.to_thread(tmgr.wait_tasks, [t.uid for t in tasks], rp.FINAL)
        assert all(t.state == rp.DONE for t in tasks)

    async def fb_executables() -> None:
        assert await asyncio.gather(*[fb_true() for _ in range(n)]) == [""] * n

    async def native_functions() -> None:
        tds = [
            rp.TaskDescription(
                {"mode": rp.TASK_FUNCTION, "raptor_id": raptor.uid, "function": rp.PythonTask(noop, (), {})}
            )
            for _ in range(n)
        ]
        tasks = tmgr.submit_tasks(tds)
        await asyncio.to_thread(tmgr.wait_tasks, [t.uid for t in tasks], rp.FINAL)
        assert all(t.state == rp.DONE for t in tasks)

    async def fb_functions() -> None:
        assert await asyncio.gather(*[fb_noop() for _ in range(n)]) == [None] * n

    try:
        await fb_executables()  # warm both paths: RAPTOR worker up, code paths imported
        await native_functions()
        cases = [
            Case(f"{n} executables, warm pilot", NATIVE, FB, EXECUTABLE_LIMIT),
            Case(f"{n} RAPTOR functions, warm pilot", NATIVE, FB, FUNCTION_LIMIT),
        ]
        cases[0].seconds = await best_of({NATIVE: native_executables, FB: fb_executables}, repeat)
        cases[1].seconds = await best_of({NATIVE: native_functions, FB: fb_functions}, repeat)
    finally:
        await flow.shutdown()
    return cases


async def main(args: Any) -> int:
    from flowbridge import RadicalExecutionBackend

    start = time.perf_counter()
    owner = await RadicalExecutionBackend({"resource": "local.localhost"})
    started = time.perf_counter() - start
    try:
        cases = await measure(owner, 50 if args.quick else 200, args.repeat)
    finally:
        start = time.perf_counter()
        await owner.shutdown()
        closed = time.perf_counter() - start
    cases[0].note = f"start-up {started:.1f} s, shutdown {closed:.1f} s"
    return report("RADICAL-Pilot: flowbridge vs native (local.localhost)", cases, args)


if __name__ == "__main__":
    run(main, __doc__.splitlines()[0])
