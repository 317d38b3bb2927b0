"""``flowbridge backends --check``: start each installed backend briefly and run one task on it.

Each backend is checked in a fresh interpreter of its own (``python -m
flowbridge._check NAME``), so one that hangs or leaves state behind cannot
spoil the next; it is given ``TIMEOUT`` seconds, then its process group is
killed. What is timed: start-up (the backend's ``start``), one task (call to
value, on a worker of that backend), shutdown.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from typing import Any

TIMEOUT = 180.0  # seconds per backend: RADICAL-Pilot's local pilot takes ~20 s to come up


def where() -> str:
    """The task body: where it ran."""
    import socket
    import threading

    return f"{socket.gethostname()}:{os.getpid()}/{threading.current_thread().name}"


async def _check(name: str) -> dict[str, Any]:
    from . import WorkflowEngine

    t0 = time.perf_counter()
    flow = await WorkflowEngine.create(backend=name, record=False)
    t1 = time.perf_counter()
    try:
        ran_on = await asyncio.wait_for(flow.function_task(where)(), TIMEOUT)
        t2 = time.perf_counter()
    finally:
        await flow.shutdown()
    t3 = time.perf_counter()
    return {"start_s": t1 - t0, "task_s": t2 - t1, "shutdown_s": t3 - t2, "ran_on": ran_on}


def check(name: str, timeout: float = TIMEOUT) -> dict[str, Any]:
    """Check one backend in a fresh interpreter: ``{"ok": bool, ...timings...}`` or ``{"ok": False, "error": ...}``."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "flowbridge._check", name],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return {"ok": False, "error": f"no answer in {timeout:g} s (killed)"}
    lines = out.strip().splitlines()
    if proc.returncode == 0 and lines:
        result: dict[str, Any] = json.loads(lines[-1])
        return {"ok": True, **result}
    tail = [line for line in err.strip().splitlines() if line.strip()]
    return {"ok": False, "error": tail[-1] if tail else f"exit status {proc.returncode}"}


def report(names: list[str]) -> int:
    """Check each backend in turn, printing a line per backend as it is done; 1 if any failed."""
    failed = 0
    print(f"{'backend':<12} {'ok':<5} {'start s':>8} {'task s':>8} {'stop s':>8}  ran on", flush=True)
    for name in names:
        r = check(name)
        if r["ok"]:
            times = f"{r['start_s']:>8.2f} {r['task_s']:>8.3f} {r['shutdown_s']:>8.2f}"
            print(f"{name:<12} {'yes':<5} {times}  {r['ran_on']}", flush=True)
        else:
            failed += 1
            print(f"{name:<12} {'NO':<5} {'-':>8} {'-':>8} {'-':>8}  {r['error']}", flush=True)
    return 1 if failed else 0


def main(name: str) -> None:
    print(json.dumps(asyncio.run(_check(name))))


if __name__ == "__main__":
    main(sys.argv[1])
