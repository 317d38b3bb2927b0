"""What task records cost: the same workloads with records on and off, side by side in one process.

    python benchmarks/bench_records.py                      # full sizes, best of 3
    python benchmarks/bench_records.py --quick --repeat 1   # smoke run, a few seconds
    python benchmarks/bench_records.py --check              # exit 1 when a target is missed

Contenders, on one ``WorkflowEngine(backend=ConcurrentExecutionBackend(ThreadPoolExecutor()))``
with plain ``def`` no-op task bodies, built before timing, alternating run by run:

* ``records off``: as ``WorkflowEngine(record=False)``, only what running the tasks needs;
* ``records on``: the default, one :class:`flowbridge.TaskRecord` per task.

Both are one engine, switched before each run (see :func:`time_on_and_off`).

Targets (issue 9): 10,000 tasks at once with records on within 1.15x of records off; the
RSS growth of 100,000 finished records under 150 MB, measured in a fresh interpreter that
runs the tasks in batches of 10,000, drops every future and keeps only the engine (and so
its records); the same run with records off is shown beside it as the floor. ``--quick``
shrinks every N and scales the memory target in proportion.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from harness import Case, report, run

OFF, ON = "records off", "records on"
DESCRIPTION = "flowbridge task records: records on vs off (WorkflowEngine(record=...)) on local threads"
FANOUT_LIMIT = 1.15  # 10,000 tasks at once: records on <= 1.15x records off
CHAIN_LIMIT = 1.15
MEMORY_LIMIT_MB_PER_100K = 150.0


def noop(*args: Any) -> None:
    return None


def inc(x: int = 0) -> int:
    return x + 1


async def fanout(task: Any, n: int) -> None:
    results = await asyncio.gather(*[task() for _ in range(n)])
    assert len(results) == n


async def chain(task: Any, n: int) -> None:
    fut = task()
    for _ in range(n - 1):
        fut = task(fut)
    assert await fut == n


async def time_on_and_off(fanout_n: int, chain_n: int, repeat: int) -> dict[str, dict[str, float]]:
    """Best seconds of each workload per contender, alternating run by run.

    Both contenders use one engine, switched between ``record=False`` (no record list)
    and records on (an empty list) before each run, untimed: two engines side by side
    differ by more than records do (the second-made engine and its pool ran up to 1.4x
    slower than the first with records off in both, on a shared 2-core machine), and
    freeing the last run's records is no part of this run.
    """
    import gc
    import time

    from flowbridge import ConcurrentExecutionBackend, WorkflowEngine

    flow = await WorkflowEngine.create(backend=ConcurrentExecutionBackend(ThreadPoolExecutor()))
    out: dict[str, dict[str, float]] = {}
    try:
        for key, workload, body, n in (("fanout", fanout, noop, fanout_n), ("chain", chain, inc, chain_n)):
            best = {OFF: float("inf"), ON: float("inf")}
            for _ in range(repeat):
                for label in (OFF, ON):
                    flow._records = [] if label == ON else None
                    task = flow.function_task(body)
                    gc.collect()
                    start = time.perf_counter()
                    await workload(task, n)
                    best[label] = min(best[label], time.perf_counter() - start)
                    assert label == OFF or len(flow._records or ()) == n  # one record per task
            out[key] = best
    finally:
        await flow.shutdown()
    return out


_MEMORY_CHILD = r"""
import asyncio, gc, json, sys
from concurrent.futures import ThreadPoolExecutor

def rss_mb():
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")

def noop(*args):
    return None

async def main(record, n):
    from flowbridge import ConcurrentExecutionBackend, WorkflowEngine
    flow = await WorkflowEngine.create(backend=ConcurrentExecutionBackend(ThreadPoolExecutor()), record=record)
    task = flow.function_task(noop)
    await asyncio.gather(*[task() for _ in range(20)])  # threads up, code paths warm
    gc.collect()
    before = rss_mb()
    batch = 10_000
    for start in range(0, n, batch):
        await asyncio.gather(*[task() for _ in range(min(batch, n - start))])
    gc.collect()
    after = rss_mb()
    kept = len(flow._records) - 20 if flow._records is not None else 0
    await flow.shutdown()
    return {"growth_mb": after - before, "records": kept}

record, n = sys.argv[1] == "on", int(sys.argv[2])
print(json.dumps(asyncio.run(main(record, n))))
"""


def finished_memory(record: bool, n: int) -> dict[str, Any]:
    """RSS growth after n finished tasks whose futures were dropped, in a fresh interpreter."""
    proc = subprocess.run(
        [sys.executable, "-c", _MEMORY_CHILD, "on" if record else "off", str(n)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if proc.returncode != 0:
        return {"error": (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]}
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def main(args: Any) -> int:
    fanout_n, chain_n, memory_n = (2_000, 200, 20_000) if args.quick else (10_000, 1_000, 100_000)
    t = asyncio.run(time_on_and_off(fanout_n, chain_n, args.repeat))
    cases = [
        Case(f"{fanout_n:,} tasks at once", baseline=OFF, subject=ON, limit=FANOUT_LIMIT, seconds=t["fanout"]),
        Case(
            f"chain of {chain_n:,} dependent tasks",
            baseline=OFF,
            subject=ON,
            limit=CHAIN_LIMIT,
            seconds=t["chain"],
        ),
    ]
    status = report(
        f"flowbridge task records: no-op tasks on local threads ({os.cpu_count()} cores); seconds, lower is better",
        cases,
        args,
    )
    on, off = finished_memory(True, memory_n), finished_memory(False, memory_n)
    limit = MEMORY_LIMIT_MB_PER_100K * memory_n / 100_000
    print(f"\n{'memory of finished records (fresh interpreter)':<52}{'measured':>12}{'target':>12}  ok")
    if "error" in on or "error" in off:
        print(f"memory check FAILED: {on.get('error') or off.get('error')}")
        return 1 if args.check else status
    ok = on["growth_mb"] < limit and on["records"] == memory_n
    print(
        f"{f'RSS growth, {memory_n:,} finished tasks, records on':<52}{on['growth_mb']:>9.1f} MB{limit:>9.1f} MB"
        f"  {'yes' if ok else 'NO'}   records off: {off['growth_mb']:.1f} MB; "
        f"{(on['growth_mb'] - off['growth_mb']) * 1024 * 1024 / memory_n:.0f} bytes per record"
    )
    if args.json:
        with open(args.json) as fh:
            data = json.load(fh)
        data.append(
            {
                "name": f"RSS growth, {memory_n:,} finished tasks",
                "kind": "absolute",
                "measured": on["growth_mb"],
                "records_off": off["growth_mb"],
                "unit": "MB",
                "limit": limit,
                "ok": ok,
            }
        )
        with open(args.json, "w") as fh:
            json.dump(data, fh, indent=2)
    return 1 if (args.check and not ok) else status


if __name__ == "__main__":
    run(main, DESCRIPTION)
