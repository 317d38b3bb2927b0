"""Blocking framework calls off the event loop, on threads that never hold up the exit.

``asyncio.to_thread`` uses the loop's default executor, whose threads
``asyncio.run`` joins at the end without a time limit (Python 3.11): one
framework call stuck in a socket read (a dead interchange, a pilot that never
answers) then hangs the whole program after Ctrl-C. :func:`off_loop` runs the call
on a daemon thread of its own and can stop waiting for it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["off_loop"]

T = TypeVar("T")


async def off_loop(fn: Callable[..., T], *args: Any, timeout: float | None = None, name: str | None = None) -> T:
    """``fn(*args)`` on a daemon thread; TimeoutError after ``timeout`` s (the call is left to finish alone)."""
    loop = asyncio.get_running_loop()
    future: asyncio.Future[T] = loop.create_future()

    def settle(ok: bool, value: Any) -> None:
        if not future.done():
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    def run() -> None:
        ok, value = False, None  # type: tuple[bool, Any]
        try:
            value = fn(*args)
            ok = True
        except BaseException as exc:
            value = exc
        try:
            loop.call_soon_threadsafe(settle, ok, value)
        except RuntimeError:  # the loop closed meanwhile: nobody waits any more
            pass

    threading.Thread(target=run, name=name or f"flowbridge-{getattr(fn, '__name__', 'call')}", daemon=True).start()
    if timeout is None:
        return await future
    return await asyncio.wait_for(asyncio.shield(future), timeout)
