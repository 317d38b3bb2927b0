"""Parsl through flowbridge vs Parsl used directly, on the same HighThroughputExecutor.

    python benchmarks/bench_parsl.py                      # full sizes, best of 3
    python benchmarks/bench_parsl.py --quick --repeat 1   # smoke run
    python benchmarks/bench_parsl.py --check              # exit 1 when a target is missed

One DataFlowKernel serves both contenders: the one ``ParslExecutionBackend()``
builds (local HTEX, flowbridge's defaults). ``native parsl`` submits a
``PythonApp`` to it and waits with ``concurrent.futures.wait``; ``flowbridge``
submits through a ``WorkflowEngine`` on that DataFlowKernel (``dfk=``) and awaits.
No-op tasks, everything submitted at once, a chain passes each future on.

A third contender calibrates the fan-out row: ``native + 50 us`` is native Parsl with
50 us of pure-Python busy work added before each submit, about what flowbridge's engine,
codec and handle do per task when measured alone. On a machine where the driver shares
its cores with the interchange and the workers, its ratio is the floor that any driver
work of that size costs.

Before the table, one more fan-out round of each contender is accounted by process: the
CPU time per task of the driver (this process, all its threads), the interchange and the
worker pool with its workers, read from ``/proc``. Wall time on a shared machine is
noisy; where the CPU goes is not.

The full run adds a start-up row, each contender timed once from construction to the
first result: a fresh DataFlowKernel with Parsl's defaults (first block at the first
strategy tick, 5 s) against a fresh ``ParslExecutionBackend()``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import shutil
import time
from typing import Any

from harness import Case, best_of, report, run

NATIVE, FB, BUSY = "native parsl", "flowbridge", "native + 50 us"
BUSY_US = 50  # driver work added per task by the calibrating contender
FANOUT_LIMIT = 1.15  # 2,000 no-op tasks at once
CHAIN_LIMIT = 1.25  # a chain of 200


def noop() -> None:
    return None


def inc(x: int) -> int:
    return x + 1


def busy(seconds: float) -> None:
    """Pure-Python work on the driver for ``seconds`` (it holds the GIL, as an engine would)."""
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        pass


def cpu_by_role() -> dict[str, float]:
    """CPU seconds so far of the driver (this process), the interchange and the worker pool, from /proc.

    HTEX's pool is started detached (its parent is init), so it is found by its command line.
    """
    tick = os.sysconf("SC_CLK_TCK")
    procs: dict[int, tuple[int, float, str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                stat = fh.read()
            with open(f"/proc/{entry}/cmdline", "rb") as fh:
                cmdline = fh.read().decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        procs[int(entry)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick, cmdline)
    children: dict[int, list[int]] = {}
    for pid, (ppid, _, _) in procs.items():
        children.setdefault(ppid, []).append(pid)

    def tree(pid: int) -> float:
        return procs[pid][1] + sum(tree(child) for child in children.get(pid, []))

    out = {"driver": procs[os.getpid()][1], "interchange": 0.0, "pool": 0.0}
    for pid, (ppid, _, cmdline) in procs.items():
        if "interchange" in cmdline and "parsl" in cmdline:
            out["interchange"] += procs[pid][1]
        elif "process_worker_pool" in cmdline and "process_worker_pool" not in procs.get(ppid, (0, 0.0, ""))[2]:
            out["pool"] += tree(pid)
    return out


async def cpu_per_task(contenders: dict[str, Any], tasks: int) -> None:
    """One more round of each contender, its CPU per task by process printed."""
    print(f"\nCPU per task ({tasks:,} no-op tasks at once, one round each, microseconds)")
    print(f"{'':<16}{'driver':>10}{'interchange':>13}{'pool':>10}{'total':>10}")
    for label, fn in contenders.items():
        before = cpu_by_role()
        await fn()
        used = {role: (after - before[role]) / tasks * 1e6 for role, after in cpu_by_role().items()}
        cells = "".join(f"{used[role]:>{w}.0f}" for role, w in (("driver", 10), ("interchange", 13), ("pool", 10)))
        print(f"{label:<16}{cells}{sum(used.values()):>10.0f}")


async def first_result_native_defaults() -> float:
    """Parsl's own defaults (bar the launch commands, which must name this interpreter)."""
    from parsl.app.python import PythonApp
    from parsl.config import Config
    from parsl.dataflow.dflow import DataFlowKernel
    from parsl.executors import HighThroughputExecutor
    from parsl.logconfigs.noop import NoopLogging

    from flowbridge.adapter import make_run_dir
    from flowbridge_parsl._config import guarded_commands

    run_dir = make_run_dir("parsl-bench")
    interchange, pool = guarded_commands(str(run_dir))
    start = time.perf_counter()
    htex = HighThroughputExecutor(address="127.0.0.1", interchange_launch_cmd=interchange, launch_cmd=pool)
    dfk = await asyncio.to_thread(
        DataFlowKernel, Config(executors=[htex], run_dir=str(run_dir), initialize_logging=NoopLogging())
    )
    try:
        await asyncio.wrap_future(PythonApp(noop, data_flow_kernel=dfk)())
        return time.perf_counter() - start
    finally:
        await asyncio.to_thread(dfk.cleanup)
        shutil.rmtree(run_dir, ignore_errors=True)


async def first_result_flowbridge() -> float:
    from flowbridge import ParslExecutionBackend, WorkflowEngine

    start = time.perf_counter()
    engine = await WorkflowEngine.create(backend=ParslExecutionBackend())
    try:
        await engine.function_task(noop)()
        return time.perf_counter() - start
    finally:
        await engine.shutdown()


async def main(args: Any) -> int:
    from parsl.app.python import PythonApp

    from flowbridge import ParslExecutionBackend, WorkflowEngine

    fanout, chain = (200, 20) if args.quick else (2000, 200)
    owner = ParslExecutionBackend()
    host = await WorkflowEngine.create(backend=owner)  # owns the DataFlowKernel both contenders use
    dfk = owner.dfk
    flow = await WorkflowEngine.create(backend=ParslExecutionBackend(dfk=dfk))
    native_noop = PythonApp(noop, data_flow_kernel=dfk)
    native_inc = PythonApp(inc, data_flow_kernel=dfk)
    fb_noop, fb_inc = flow.function_task(noop), flow.function_task(inc)
    wait = concurrent.futures.wait

    async def native_fanout() -> None:
        futures = [native_noop() for _ in range(fanout)]
        await asyncio.to_thread(wait, futures)

    async def busy_fanout() -> None:
        futures = []
        for _ in range(fanout):
            busy(BUSY_US * 1e-6)
            futures.append(native_noop())
        await asyncio.to_thread(wait, futures)

    async def fb_fanout() -> None:
        await asyncio.gather(*[fb_noop() for _ in range(fanout)])

    async def native_chain() -> None:
        x = native_inc(0)
        for _ in range(chain - 1):
            x = native_inc(x)
        assert await asyncio.to_thread(x.result) == chain

    async def fb_chain() -> None:
        x = fb_inc(0)
        for _ in range(chain - 1):
            x = fb_inc(x)
        assert await x == chain

    try:
        await fb_fanout()  # warm both paths: workers started, code paths imported
        await native_fanout()
        cases = [
            Case(f"{fanout:,} no-op tasks at once", NATIVE, FB, FANOUT_LIMIT),
            Case(f"chain of {chain}", NATIVE, FB, CHAIN_LIMIT),
        ]
        fanouts = await best_of({NATIVE: native_fanout, FB: fb_fanout, BUSY: busy_fanout}, args.repeat)
        cases[0].seconds = {NATIVE: fanouts[NATIVE], FB: fanouts[FB]}
        cases[1].seconds = await best_of({NATIVE: native_chain, FB: fb_chain}, args.repeat)
        calibration = Case(
            f"{fanout:,} no-op tasks, {BUSY_US} us of Python each",
            NATIVE,
            BUSY,
            None,
            note="calibration: what that much driver work costs here",
        )
        calibration.seconds = {NATIVE: fanouts[NATIVE], BUSY: fanouts[BUSY]}
        cases.append(calibration)
        await cpu_per_task({NATIVE: native_fanout, FB: fb_fanout}, fanout)
    finally:
        await flow.shutdown()
        await host.shutdown()
    if not args.quick:
        startup = Case(
            "start to first result", NATIVE, FB, None, note="once each; native: Parsl's default strategy_period"
        )
        startup.seconds = {NATIVE: await first_result_native_defaults(), FB: await first_result_flowbridge()}
        cases.append(startup)
    title = f"Parsl HTEX ({os.cpu_count()} workers): native vs through flowbridge, same DataFlowKernel"
    return report(title, cases, args)


if __name__ == "__main__":
    run(main, "Parsl HTEX: native Parsl apps vs the same work through flowbridge")
