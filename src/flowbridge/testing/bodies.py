"""The task bodies the conformance suite runs: the standard library only, nothing else.

They live apart from the suite so that a worker which imports them (a process pool, a
RAPTOR fork per task, a Parsl worker) does not import pytest with them: on RADICAL-Pilot
that import cost 0.3 s per task and made 200 tasks take 80 s instead of 8.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any


def add(a: Any, b: Any) -> Any:
    return a + b


async def async_add(a: Any, b: Any) -> Any:
    await asyncio.sleep(0.01)
    return a + b


def total(items: Any) -> Any:
    if isinstance(items, dict):
        return sum(items.values())
    return sum(items)


def fail(message: str) -> None:
    raise KeyError(message)


def touch(path: str, *_: Any) -> str:
    Path(path).write_text("ran")
    return path


def sleep_then(seconds: float, value: Any = None) -> Any:
    time.sleep(seconds)
    return value


def sleep_touch(seconds: float, path: str) -> None:
    time.sleep(seconds)
    Path(path).write_text("ran")


def flaky(counter: str, failures: int) -> int:
    """Fails ``failures`` times (counted in a file), then returns the attempt number."""
    path = Path(counter)
    attempt = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(attempt))
    if attempt <= failures:
        raise RuntimeError(f"attempt {attempt} fails on purpose")
    return attempt


def pid() -> int:
    return os.getpid()
