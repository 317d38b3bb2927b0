"""The missing ``if __name__ == "__main__":`` guard, told in one line instead of 200.

A LocalCluster of processes starts its workers with multiprocessing's ``spawn``,
which re-runs the main script in every worker. A script that starts the workflow
at module level, outside the guard, then starts a cluster again in each worker,
which fails deep inside Dask after long tracebacks. The driver checks the
statement its main thread is running before any process starts; a worker that
re-runs the script anyway leaves quietly, and the driver's error names the fix.
"""

from __future__ import annotations

import ast
import multiprocessing
import os
import sys
import threading
from types import FrameType

#: The fix, as the errors say it.
FIX = (
    'put the workflow under `if __name__ == "__main__":`, or run the script with `flowbridge run` '
    "(which needs no guard for a script with top-level await), or pass processes=False"
)


def reruns_main() -> str | None:
    """The main script's path when Dask's worker processes would re-run it (spawn), else None."""
    import dask

    method = dask.config.get("distributed.worker.multiprocessing-method", "spawn")
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if method == "fork" or not isinstance(path, str) or not path.endswith(".py"):
        return None  # no file (notebook, `flowbridge run` with top-level await, -c): nothing to re-run
    return path


def in_bootstrapping_worker() -> bool:
    """True inside a spawned child that is re-running the main script before it became a worker."""
    return bool(getattr(multiprocessing.current_process(), "_inheriting", False))


def unguarded_line(path: str) -> int | None:
    """The line of the main script the main thread runs now, if no ``if`` encloses it; else None."""
    main = sys.modules.get("__main__")
    frame: FrameType | None = sys._current_frames().get(threading.main_thread().ident or -1)
    line = None
    while frame is not None:
        if frame.f_code.co_name == "<module>" and main is not None and frame.f_globals is vars(main):
            line = frame.f_lineno
        frame = frame.f_back
    if line is None:
        return None
    try:
        with open(path, encoding="utf-8") as fh:
            tree = ast.parse(fh.read(), path)
    except (OSError, SyntaxError, ValueError):
        return None
    body: list[ast.stmt] = tree.body
    while True:
        for stmt in body:
            end = getattr(stmt, "end_lineno", None) or stmt.lineno
            if stmt.lineno <= line <= end:
                break
        else:
            return line
        if isinstance(stmt, ast.If):
            return None  # `if __name__ == "__main__":` or a guard of its own making
        inner = [
            block
            for block in (
                getattr(stmt, "body", None),
                getattr(stmt, "orelse", None),
                getattr(stmt, "finalbody", None),
                *(h.body for h in getattr(stmt, "handlers", ())),
            )
            if isinstance(block, list) and block and isinstance(block[0], ast.stmt)
        ]
        body = [s for block in inner for s in block]
        if not body:
            return line


def describe(path: str, line: int | None = None) -> str:
    where = f"{os.path.basename(path)}:{line}" if line else os.path.basename(path)
    return (
        f"Dask's worker processes start with 'spawn', which re-runs {path} in each of them, and the "
        f'workflow starts at module level ({where}), outside `if __name__ == "__main__":`, so each worker '
        f"would start a cluster of its own. Fix: {FIX}."
    )
