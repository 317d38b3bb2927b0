"""Completions from other threads, handed to the engine's loop in batches: one wakeup for many.

A backend whose futures finish on its own threads (a thread pool, Parsl's DataFlowKernel,
executorlib) would otherwise cost the loop one ``call_soon_threadsafe`` each: a write to
the loop's self-pipe, a wakeup and a GIL hand-over per task. The first completion of a
batch schedules one drain; those that arrive before it runs join it.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import Callable
from typing import Any


class Inbox:
    """Callbacks for one event loop, put from any thread, run on the loop in the order put."""

    __slots__ = ("__weakref__", "_items", "_lock", "_loop")

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._items: list[tuple[Callable[[Any], None], Any]] = []
        self._lock = threading.Lock()

    def put(self, callback: Callable[[Any], None], arg: Any) -> None:
        with self._lock:
            first = not self._items
            self._items.append((callback, arg))
        if first:
            try:
                self._loop.call_soon_threadsafe(self._drain)
            except RuntimeError:  # the loop has closed: nobody is left to tell
                pass

    def _drain(self) -> None:
        with self._lock:
            items, self._items = self._items, []
        for callback, arg in items:
            try:
                callback(arg)
            except Exception as exc:  # one bad callback must not drop the rest
                context = {"message": "flowbridge completion callback failed", "exception": exc}
                self._loop.call_exception_handler(context)


_inboxes: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Inbox] = weakref.WeakKeyDictionary()
_made = threading.Lock()


def inbox(loop: asyncio.AbstractEventLoop) -> Inbox:
    """The loop's inbox (made on first use)."""
    found = _inboxes.get(loop)
    if found is None:
        with _made:
            found = _inboxes.get(loop)
            if found is None:
                found = _inboxes[loop] = Inbox(loop)
    return found
