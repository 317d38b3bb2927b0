"""Core overhead of flowbridge on local threads, side by side with the floor and radical-asyncflow.

    python benchmarks/bench_core.py                      # full sizes, best of 3
    python benchmarks/bench_core.py --quick --repeat 1   # smoke run, well under 30 s
    python benchmarks/bench_core.py --check              # exit 1 when a target is missed
    python benchmarks/bench_core.py --with-asyncflow-full  # also radical-asyncflow at full size (slow)

Contenders, all on a default ``ThreadPoolExecutor()`` and no-op tasks:

* ``raw asyncio+threads``: ``asyncio.wrap_future(pool.submit(fn))``, the floor in Python;
  a chain is ``x = await wrap_future(pool.submit(inc, x))`` in a loop.
* ``flowbridge``: ``WorkflowEngine(backend=ConcurrentExecutionBackend(ThreadPoolExecutor()))``
  with plain ``def`` task bodies, everything submitted at once, dependencies as arguments.
* ``radical-asyncflow`` 0.6.0: ``WorkflowEngine.create(backend=LocalExecutionBackend(...))``
  with ``async def`` bodies (it takes no others). It polls (a scheduler task wakes every 10 ms),
  so it never shares a loop with the others: each of its rows runs on a fresh event loop after
  raw and flowbridge were timed, once (not best-of), and at reduced size unless
  ``--with-asyncflow-full`` is given; every row names the N it ran.

Raw and flowbridge are interleaved by :func:`harness.best_of`; engines and pools are built
before timing and reused across repeats. Ratio targets (flowbridge / raw) are the cases'
``limit``; absolute targets (seed composite examples, import time, memory of pending tasks)
are printed in a second table and count for ``--check`` as well. Import time (child CPU
time, best of N; wall time shown beside it) and memory (RSS growth while tasks wait on one
unresolved future, then resolved and shut down) are measured in fresh subprocesses.
``--quick`` shrinks every N, runs the composite examples with 0.1 s tasks and scales the
absolute targets in proportion (ideal x 3.1/3.0; 400 MB per 100,000 pending tasks).
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from harness import Case, best_of, report, run

RAW, FB, RA = "raw asyncio+threads", "flowbridge", "radical-asyncflow"
FULL_FLAG = "--with-asyncflow-full"
DESCRIPTION = (
    "flowbridge core overhead vs raw asyncio+threads and radical-asyncflow 0.6.0 "
    f"(extra flag: {FULL_FLAG} runs radical-asyncflow once at full size)"
)

# Issue targets.
FANOUT_LIMIT = 2.0  # 10,000 tasks at once: flowbridge <= 2x raw
CHAIN_LIMIT = 3.0  # chain of 1,000 dependent tasks: flowbridge <= 3x raw
COMPOSITE_SLACK = 3.1 / 3.0  # 3.1 s for an ideal 3.0 s (and 6.2 s for 6.0 s)
IMPORT_LIMIT_S = 0.060  # `import flowbridge` over a bare interpreter
MEMORY_LIMIT_MB_PER_100K = 400.0  # RSS growth for 100,000 pending tasks


@dataclass
class Sizes:
    fanout: int  # the target row, raw and flowbridge
    fanout_small: int  # radical-asyncflow's row (raw and flowbridge run it too)
    chain: int
    chain_small: int
    task_s: float  # duration of one task of the composite examples (the seed: 0.5 s)
    import_runs: int
    pending: int


def sizes(args: Any) -> Sizes:
    if args.quick:
        return Sizes(
            fanout=2_000, fanout_small=200, chain=200, chain_small=20, task_s=0.1, import_runs=5, pending=20_000
        )
    return Sizes(
        fanout=10_000,
        fanout_small=1_000,
        chain=1_000,
        chain_small=100,
        task_s=0.5,
        import_runs=max(10, 5 * args.repeat),
        pending=100_000,
    )


# -- task bodies -------------------------------------------------------------------------


def noop(*args: Any) -> None:
    return None


def inc(x: int = 0) -> int:
    return x + 1


async def anoop(*args: Any) -> None:
    return None


async def ainc(x: int = 0) -> int:
    return x + 1


# -- the workloads, per contender --------------------------------------------------------


async def raw_fanout(pool: ThreadPoolExecutor, n: int) -> None:
    results = await asyncio.gather(*[asyncio.wrap_future(pool.submit(noop)) for _ in range(n)])
    assert len(results) == n


async def raw_chain(pool: ThreadPoolExecutor, n: int) -> None:
    x = 0
    for _ in range(n):
        x = await asyncio.wrap_future(pool.submit(inc, x))
    assert x == n, x


async def flow_fanout(task: Callable[..., Any], n: int) -> None:
    """flowbridge and radical-asyncflow alike: submit every task, then gather."""
    results = await asyncio.gather(*[task() for _ in range(n)])
    assert len(results) == n


async def flow_chain(task: Callable[..., Any], n: int) -> None:
    """flowbridge and radical-asyncflow alike: submit the whole chain at once, await its end."""
    fut = task()
    for _ in range(n - 1):
        fut = task(fut)
    value = await fut
    assert value == n, value


def composite_flow(flow: Any, task_s: float) -> tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]]:
    """The seed composite examples (examples/seeds/002_*), printing removed, on ``flow``.

    The same code runs on flowbridge and on radical-asyncflow, as the seeds do. Returns
    ``(independent, dependent)``: three independent blocks, or block C after A and B.
    """

    @flow.function_task
    async def task1(name: str) -> float:
        now = time.time()
        await asyncio.sleep(task_s)
        return now

    @flow.function_task
    async def task2(name: str) -> float:
        now = time.time()
        await asyncio.sleep(task_s)
        return now

    @flow.function_task
    async def task3(name: str, *args: Any) -> float:
        now = time.time()
        await asyncio.sleep(task_s)
        return now

    async def create_workflow(name: str) -> None:
        t1 = task1("task1")
        t2 = task2("task2")
        t3 = task3("task3", t1, t2)
        await t3

    @flow.block
    async def create_block(name: str, *args: Any) -> None:
        await create_workflow("WF1")
        await create_workflow("WF2")
        await create_workflow("WF3")

    async def independent() -> None:
        await asyncio.gather(create_block("Block A"), create_block("Block B"), create_block("Block C"))

    async def dependent() -> None:
        block1 = create_block("Block A")
        block2 = create_block("Block B")
        block3 = create_block("Block C", block1, block2)
        await block3

    return independent, dependent


def composite_raw(
    pool: ThreadPoolExecutor, task_s: float
) -> tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]]:
    """The same composite logic by hand: async bodies on pool threads, blocks as asyncio tasks."""

    async def body(name: str) -> float:
        now = time.time()
        await asyncio.sleep(task_s)
        return now

    def task(name: str) -> asyncio.Future[float]:
        return asyncio.wrap_future(pool.submit(lambda: asyncio.run(body(name))))

    async def create_workflow(name: str) -> None:
        t1, t2 = task("task1"), task("task2")
        await asyncio.gather(t1, t2)
        await task("task3")

    async def create_block(name: str, *deps: Awaitable[None]) -> None:
        if deps:
            await asyncio.gather(*deps)
        await create_workflow("WF1")
        await create_workflow("WF2")
        await create_workflow("WF3")

    async def independent() -> None:
        await asyncio.gather(create_block("Block A"), create_block("Block B"), create_block("Block C"))

    async def dependent() -> None:
        block1 = asyncio.ensure_future(create_block("Block A"))
        block2 = asyncio.ensure_future(create_block("Block B"))
        await create_block("Block C", block1, block2)

    return independent, dependent


# -- timing raw and flowbridge side by side ------------------------------------------------


async def time_raw_and_flowbridge(sz: Sizes, repeat: int) -> dict[str, dict[str, float]]:
    from flowbridge import ConcurrentExecutionBackend, WorkflowEngine

    out: dict[str, dict[str, float]] = {}
    pool = ThreadPoolExecutor()
    flow = await WorkflowEngine.create(backend=ConcurrentExecutionBackend(ThreadPoolExecutor()))
    try:
        fb_noop, fb_inc = flow.function_task(noop), flow.function_task(inc)
        for key, n in (("fanout", sz.fanout), ("fanout_small", sz.fanout_small)):
            out[key] = await best_of(
                {RAW: lambda n=n: raw_fanout(pool, n), FB: lambda n=n: flow_fanout(fb_noop, n)}, repeat
            )
        for key, n in (("chain", sz.chain), ("chain_small", sz.chain_small)):
            out[key] = await best_of(
                {RAW: lambda n=n: raw_chain(pool, n), FB: lambda n=n: flow_chain(fb_inc, n)}, repeat
            )
        raw_ind, raw_dep = composite_raw(pool, sz.task_s)
        fb_ind, fb_dep = composite_flow(flow, sz.task_s)
        out["independent"] = await best_of({RAW: raw_ind, FB: fb_ind}, repeat)
        out["dependent"] = await best_of({RAW: raw_dep, FB: fb_dep}, repeat)
    finally:
        await flow.shutdown()
        pool.shutdown()
    return out


# -- radical-asyncflow, each workload once on a fresh loop -------------------------------------


def radical_available() -> str | None:
    """None when radical-asyncflow can be imported, else why not."""
    try:
        import radical.asyncflow  # noqa: F401
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def time_radical(workload: str, n: int = 0, task_s: float = 0.0) -> float:
    """Seconds radical-asyncflow takes for one run of a workload (engine built untimed)."""

    async def main() -> float:
        from radical import asyncflow

        backend_cls = getattr(asyncflow, "ConcurrentExecutionBackend", None) or asyncflow.LocalExecutionBackend
        flow = await asyncflow.WorkflowEngine.create(backend=await backend_cls(ThreadPoolExecutor()))
        try:
            if workload == "fanout":
                task = flow.function_task(anoop)
                fn: Callable[[], Awaitable[None]] = lambda: flow_fanout(task, n)
            elif workload == "chain":
                task = flow.function_task(ainc)
                fn = lambda: flow_chain(task, n)
            else:
                independent, dependent = composite_flow(flow, task_s)
                fn = independent if workload == "independent" else dependent
            return (await best_of({RA: fn}, 1))[RA]
        finally:
            await flow.shutdown()

    # radical-asyncflow writes an asyncflow.session.* folder into the working directory.
    here = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="bench-asyncflow-") as scratch:
        os.chdir(scratch)
        try:
            return asyncio.run(main())
        finally:
            os.chdir(here)


# -- fresh subprocesses: import time and memory ------------------------------------------------


def import_times(runs: int) -> tuple[dict[str, float], dict[str, float]]:
    """Best CPU time and best wall time of fresh interpreters running each statement, interleaved.

    CPU time (user + sys of the child) is what the check uses: on a shared 2-core machine
    a child's wall time also counts the time it waits for a core, which says more about the
    neighbours than about the import. Every interpreter reads its bytecode from one private,
    warmed ``PYTHONPYCACHEPREFIX`` with writing allowed, as a normal install would: with
    ``PYTHONDONTWRITEBYTECODE=1`` (set in some shells) an editable install recompiles
    flowbridge's modules on every import (~15-20 ms), which is not what users pay.
    Nothing is written into the source tree.
    """
    statements = {
        "bare": "pass",
        "asyncio": "import asyncio",
        FB: "import flowbridge",
    }
    if radical_available() is None:
        statements[RA] = "import radical.asyncflow"

    def children_cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    cpu = {label: float("inf") for label in statements}
    wall = dict(cpu)
    with tempfile.TemporaryDirectory(prefix="bench-core-pyc-") as pycache:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = pycache
        for stmt in statements.values():  # fill the pyc cache and the page cache, untimed
            subprocess.run([sys.executable, "-c", stmt], check=True, env=env)
        for _ in range(runs):
            for label, stmt in statements.items():
                cpu_start, start = children_cpu(), time.perf_counter()
                subprocess.run([sys.executable, "-c", stmt], check=True, env=env)
                wall[label] = min(wall[label], time.perf_counter() - start)
                cpu[label] = min(cpu[label], children_cpu() - cpu_start)
    return cpu, wall


_MEMORY_CHILD = r"""
import asyncio, gc, json, sys, time
from concurrent.futures import ThreadPoolExecutor

def rss_mb():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")

def noop(*args):
    return None

async def flowbridge_case(n):
    from flowbridge import ConcurrentExecutionBackend, WorkflowEngine
    flow = await WorkflowEngine.create(backend=ConcurrentExecutionBackend(ThreadPoolExecutor()))
    task = flow.function_task(noop)
    await asyncio.gather(*[task() for _ in range(20)])  # pool threads up, code paths warm
    gate = asyncio.get_running_loop().create_future()
    gc.collect()
    before = rss_mb()
    start = time.perf_counter()
    futures = [task(gate) for _ in range(n)]
    submit_s = time.perf_counter() - start
    gc.collect()
    after = rss_mb()
    pending = sum(1 for f in futures if str(f.state) == "PENDING" and not f.done())
    start = time.perf_counter()
    gate.set_result(None)
    results = await asyncio.gather(*futures)
    resolve_s = time.perf_counter() - start
    ok = pending == n and len(results) == n and all(str(f.state) == "DONE" for f in futures)
    await flow.shutdown()
    return before, after, submit_s, resolve_s, ok

async def raw_case(n):
    pool = ThreadPoolExecutor()
    await asyncio.gather(*[asyncio.wrap_future(pool.submit(noop)) for _ in range(20)])
    gate = asyncio.get_running_loop().create_future()

    async def one():
        await gate
        return await asyncio.wrap_future(pool.submit(noop))

    gc.collect()
    before = rss_mb()
    start = time.perf_counter()
    futures = [asyncio.ensure_future(one()) for _ in range(n)]
    await asyncio.sleep(0)  # every task starts and parks on the gate
    submit_s = time.perf_counter() - start
    gc.collect()
    after = rss_mb()
    pending = sum(1 for f in futures if not f.done())
    start = time.perf_counter()
    gate.set_result(None)
    results = await asyncio.gather(*futures)
    resolve_s = time.perf_counter() - start
    pool.shutdown()
    return before, after, submit_s, resolve_s, pending == n and len(results) == n

which, n = sys.argv[1], int(sys.argv[2])
before, after, submit_s, resolve_s, ok = asyncio.run((flowbridge_case if which == "flowbridge" else raw_case)(n))
print(json.dumps({"before_mb": before, "growth_mb": after - before, "submit_s": submit_s,
                  "resolve_s": resolve_s, "ok": ok}))
"""


def pending_memory(which: str, n: int) -> dict[str, Any]:
    """RSS growth while n tasks wait on one unresolved future, in a fresh interpreter."""
    proc = subprocess.run(
        [sys.executable, "-c", _MEMORY_CHILD, which, str(n)], capture_output=True, text=True, timeout=600
    )
    if proc.returncode != 0:
        return {"ok": False, "error": proc.stderr.strip().splitlines()[-1:] or [f"exit {proc.returncode}"]}
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- putting it together --------------------------------------------------------------------


@dataclass
class Absolute:
    name: str
    measured: float
    limit: float
    unit: str  # "s", "ms" or "MB"
    reference: str = ""

    @property
    def ok(self) -> bool:
        return self.measured <= self.limit


def print_absolute(checks: list[Absolute]) -> bool:
    """Print the absolute targets; True when any is missed."""
    width = max(len(c.name) for c in checks) + 2
    header = f"{'absolute target (flowbridge)':<{width}}{'measured':>12}{'target':>12}  ok   reference"
    print(f"\n{header}\n" + "-" * len(header))
    for c in checks:
        digits = 3 if c.unit == "s" else 1
        measured = f"{c.measured:.{digits}f} {c.unit}" if c.measured == c.measured else "failed"
        verdict = "yes" if c.ok else "NO"
        print(f"{c.name:<{width}}{measured:>12}{c.limit:>9.{digits}f} {c.unit:<2}  {verdict:<4} {c.reference}")
    return any(not c.ok for c in checks)


def main(args: Any) -> int:
    sz = sizes(args)
    full_radical = getattr(args, "with_asyncflow_full", False) and not args.quick
    radical_missing = radical_available()
    ra_note = "radical-asyncflow: 1 run, own loop"

    # 1. raw vs flowbridge, interleaved, best of --repeat
    t = asyncio.run(time_raw_and_flowbridge(sz, args.repeat))

    # 2. radical-asyncflow, once per workload, each on a fresh loop
    ra: dict[str, float] = {}
    if radical_missing is None:
        if full_radical:
            ra["fanout"] = time_radical("fanout", sz.fanout)
            ra["chain"] = time_radical("chain", sz.chain)
        ra["fanout_small"] = time_radical("fanout", sz.fanout_small)
        ra["chain_small"] = time_radical("chain", sz.chain_small)
        ra["independent"] = time_radical("independent", task_s=sz.task_s)
        if not args.quick:  # ~8 s even with 0.1 s tasks: left out of the smoke run
            ra["dependent"] = time_radical("dependent", task_s=sz.task_s)

    def case(key: str, name: str, limit: float | None, note: str = "") -> Case:
        seconds = dict(t[key])
        if key in ra:
            seconds[RA] = ra[key]
            note = f"{note}; {ra_note}" if note else ra_note
        return Case(name, baseline=RAW, subject=FB, limit=limit, seconds=seconds, note=note)

    cases = [
        case(
            "fanout",
            f"{sz.fanout:,} tasks at once",
            FANOUT_LIMIT,
            "" if "fanout" in ra else f"radical-asyncflow only with {FULL_FLAG}",
        ),
        case("fanout_small", f"{sz.fanout_small:,} tasks at once", None, "radical-asyncflow's size; no target"),
        case(
            "chain",
            f"chain of {sz.chain:,} dependent tasks",
            CHAIN_LIMIT,
            "" if "chain" in ra else f"radical-asyncflow only with {FULL_FLAG}",
        ),
        case(
            "chain_small", f"chain of {sz.chain_small:,} dependent tasks", None, "radical-asyncflow's size; no target"
        ),
        case(
            "independent",
            f"composite, 3 independent blocks, {sz.task_s:g} s tasks",
            None,
            f"ideal {6 * sz.task_s:.1f} s; target below",
        ),
        case(
            "dependent",
            f"composite, C after A and B, {sz.task_s:g} s tasks",
            None,
            f"ideal {12 * sz.task_s:.1f} s; target below"
            + ("; radical-asyncflow: full run only" if args.quick and radical_missing is None else ""),
        ),
    ]
    if radical_missing is not None:
        print(f"radical-asyncflow not importable, its column is empty: {radical_missing}")
    status = report(
        "flowbridge core: no-op tasks on local threads (default ThreadPoolExecutor, "
        f"{os.cpu_count()} cores); seconds, lower is better",
        cases,
        args,
    )

    # 3. fresh subprocesses: import time, memory of pending tasks
    imp, imp_wall = import_times(sz.import_runs)
    bare = imp["bare"]
    asyncio_ms = (imp["asyncio"] - bare) * 1e3
    ref = f"CPU time, .pyc cached; bare python {bare * 1e3:.0f} ms; import asyncio +{asyncio_ms:.0f} ms"
    if RA in imp:
        ref += f"; radical.asyncflow +{(imp[RA] - bare) * 1e3:.0f} ms"
    ref += f"; wall time: flowbridge +{(imp_wall[FB] - imp_wall['bare']) * 1e3:.0f} ms"
    mem_fb = pending_memory("flowbridge", sz.pending)
    mem_raw = pending_memory("raw", sz.pending)
    mem_limit = MEMORY_LIMIT_MB_PER_100K * sz.pending / 100_000
    if "submit_s" in mem_fb:
        mem_ref = f"submit {mem_fb['submit_s']:.2f} s, resolve {mem_fb['resolve_s']:.2f} s, then shut down"
    else:
        mem_ref = f"child failed: {mem_fb.get('error')}"
    if "growth_mb" in mem_raw:
        mem_ref += f"; raw asyncio tasks +{mem_raw['growth_mb']:.0f} MB"
    nan = float("nan")
    checks = [
        Absolute(
            f"composite, 3 independent blocks, {sz.task_s:g} s tasks",
            t["independent"][FB],
            round(6 * sz.task_s * COMPOSITE_SLACK, 3),
            "s",
            f"ideal {6 * sz.task_s:.1f} s; raw {t['independent'][RAW]:.3f} s"
            + (f"; radical-asyncflow {ra['independent']:.3f} s" if "independent" in ra else ""),
        ),
        Absolute(
            f"composite, C after A and B, {sz.task_s:g} s tasks",
            t["dependent"][FB],
            round(12 * sz.task_s * COMPOSITE_SLACK, 3),
            "s",
            f"ideal {12 * sz.task_s:.1f} s; raw {t['dependent'][RAW]:.3f} s"
            + (f"; radical-asyncflow {ra['dependent']:.3f} s" if "dependent" in ra else ""),
        ),
        Absolute(
            f"import flowbridge over bare python (CPU), best of {sz.import_runs}",
            (imp[FB] - bare) * 1e3,
            IMPORT_LIMIT_S * 1e3,
            "ms",
            ref,
        ),
        Absolute(
            f"RSS growth, {sz.pending:,} tasks pending on one future",
            mem_fb["growth_mb"] if mem_fb.get("ok") else nan,
            mem_limit,
            "MB",
            mem_ref,
        ),
    ]
    missed = print_absolute(checks)
    if not mem_fb.get("ok"):
        print("memory check FAILED: the flowbridge child did not finish cleanly")
    if args.json:
        with open(args.json) as fh:
            data = json.load(fh)
        data += [
            {
                "name": c.name,
                "kind": "absolute",
                "measured": c.measured,
                "unit": c.unit,
                "limit": c.limit,
                "ok": c.ok,
                "note": c.reference,
            }
            for c in checks
        ]
        with open(args.json, "w") as fh:
            json.dump(data, fh, indent=2)
    if missed and args.check:
        status = 1
    return status


def _take_flag(argv: list[str], flag: str) -> bool:
    """Remove a flag the shared harness does not know about; say whether it was there."""
    found = flag in argv
    while flag in argv:
        argv.remove(flag)
    return found


if __name__ == "__main__":
    _with_full = _take_flag(sys.argv, FULL_FLAG)

    def _main(args: Any) -> int:
        args.with_asyncflow_full = _with_full
        return main(args)

    run(_main, DESCRIPTION)
