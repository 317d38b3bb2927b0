"""Talking to a Dask client from the engine's loop without ever blocking it.

An asynchronous client on the engine's loop is used directly. Any other client (a
user's sync client, whose loop runs on its own thread, or an asynchronous one of
another loop) gets its coroutines run on its own loop. Fetching values and
cancelling are batched per loop iteration: one ``gather`` for many results. A
task's end comes back through its handle (:mod:`._handles`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from distributed import Future
from distributed.client import FutureCancelledError

from flowbridge import FlowbridgeError, WorkerLost

from ._handles import outcome
from ._resources import offers_of

if TYPE_CHECKING:
    from ._handles import DaskHandle

_log = logging.getLogger("flowbridge.dask")
_STREAM_PACE = 0.01  # seconds between gathers while values are asked for faster than they come


class ClientBridge:
    """One Dask client as the engine's loop sees it."""

    def __init__(self, client: Any, loop: asyncio.AbstractEventLoop, direct: bool | None = None) -> None:
        self.client = client
        self.direct = direct
        self.loop = loop
        self.client_loop: asyncio.AbstractEventLoop = client.loop.asyncio_loop
        self.same_loop = bool(client.asynchronous) and self.client_loop is loop
        self.closed = False  # the client was closed by flowbridge: values left on workers are gone
        self.inflight: dict[str, DaskHandle] = {}  # by key, until their Dask futures end
        self._fetches: list[tuple[Future[Any], asyncio.Future[Any]]] = []
        self._cancels: list[Future[Any]] = []
        self._kills: list[str] = []
        self._gathering = False
        self._background: set[asyncio.Future[Any]] = set()

    def call(self, make: Callable[[], Awaitable[Any]]) -> Awaitable[Any]:
        """Await ``make()`` (a client coroutine) on the client's loop, from the engine's loop."""
        if self.same_loop:
            return make()

        async def on_client_loop() -> Any:
            return await make()

        return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(on_client_loop(), self.client_loop), loop=self.loop)

    # -- values ------------------------------------------------------------------------

    async def fetch(self, future: Future[Any], label: str) -> Any:
        """A finished task's value, gathered in one batch with the others asked for meanwhile."""
        if self.closed:
            raise FlowbridgeError(
                f"the value of task {label} stayed on the Dask workers, and flowbridge has since shut "
                f"that cluster or client down; await task values before the engine shuts down"
            )
        waiter: asyncio.Future[Any] = self.loop.create_future()
        if not self._fetches and not self._gathering:
            self.loop.call_soon(self._gather_batch)
        self._fetches.append((future, waiter))
        return await waiter

    def _gather_batch(self) -> None:
        batch, self._fetches = self._fetches, []
        self._gathering = bool(batch)
        if batch:
            self.spawn(self._gather(batch)).add_done_callback(self._gathered)

    def _gathered(self, _: Any) -> None:
        """One gather at a time: what was asked for meanwhile goes in the next, as one batch.

        Values asked for while a gather ran mean a stream of them (many tasks awaited at
        once): the next gather waits a few ms to take more per round trip. A lone await
        finds no gather running and is served at once.
        """
        if self._fetches:
            self.loop.call_later(_STREAM_PACE, self._gather_batch)
        else:
            self._gathering = False

    async def _gather(self, batch: list[tuple[Future[Any], asyncio.Future[Any]]]) -> None:
        futures = [f for f, _ in batch]
        try:
            values = await self.call(lambda: self.client.gather(futures, direct=self.direct, asynchronous=True))
        except asyncio.CancelledError:
            for _, waiter in batch:
                waiter.cancel()
            raise
        except Exception as exc:
            if len(batch) > 1:  # find whose value failed: the others still get theirs
                for item in batch:
                    self.spawn(self._gather([item]))
                return
            error = _fetch_error(exc, futures[0])
            for _, waiter in batch:
                if not waiter.done():
                    waiter.set_exception(error)
            return
        for (_, waiter), value in zip(batch, values, strict=True):
            if not waiter.done():
                waiter.set_result(value)

    # -- cancellation ------------------------------------------------------------------

    def cancel(self, future: Future[Any]) -> None:
        """``client.cancel`` for this future, sent with the others cancelled in this loop turn."""
        if not self._cancels:
            self.loop.call_soon(self._cancel_batch)
        self._cancels.append(future)

    def _cancel_batch(self) -> None:
        batch, self._cancels = self._cancels, []
        if batch and not self.closed:
            self.spawn(
                self.call(lambda: self.client.cancel(batch, asynchronous=True, reason="cancelled by flowbridge"))
            )

    def kill_commands(self, tag: str) -> None:
        """Kill the command tagged ``tag`` on whichever worker runs it, batched per loop turn."""
        if not self._kills:
            self.loop.call_soon(self._kill_batch)
        self._kills.append(tag)

    def _kill_batch(self) -> None:
        batch, self._kills = self._kills, []
        if batch and not self.closed:
            self.spawn(self.kill_on_workers(batch))

    async def kill_on_workers(self, tags: list[str], prefix: str | None = None, timeout: float = 5.0) -> int:
        """Run :func:`kill_commands` on every worker (``client.run``); how many processes it killed."""
        from ._commands import kill_commands

        done = await asyncio.wait_for(
            self.call(lambda: self.client.run(kill_commands, tags, prefix, on_error="ignore", asynchronous=True)),
            timeout,
        )
        return sum(n for n in (done or {}).values() if isinstance(n, int))

    # -- scheduler facts -----------------------------------------------------------------

    async def offers(self) -> list[dict[str, float]]:
        """What each connected worker declares in ``--resources``."""
        identity = await self.call(lambda: self.client.scheduler.identity(n_workers=-1))
        return offers_of(identity)

    # -- housekeeping ------------------------------------------------------------------

    def spawn(self, awaitable: Awaitable[Any]) -> asyncio.Future[Any]:
        task = asyncio.ensure_future(awaitable, loop=self.loop)
        self._background.add(task)
        task.add_done_callback(self._reap)
        return task

    def _reap(self, task: asyncio.Future[Any]) -> None:
        self._background.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _log.warning("a Dask client call failed: %r", task.exception())

    async def drain(self, timeout: float) -> None:
        """Send pending cancellations now and wait (bounded) for background calls to end."""
        self._cancel_batch()
        self._kill_batch()
        if self._background:
            _, pending = await asyncio.wait(set(self._background), timeout=timeout)
            for task in pending:
                task.cancel()


def _fetch_error(exc: BaseException, future: Future[Any]) -> BaseException:
    """Why a finished task's value could not be fetched, as flowbridge errors say it."""
    error = outcome(future)[1] if future.status in ("error", "cancelled") else None
    if isinstance(error, WorkerLost):
        return error
    if isinstance(exc, FutureCancelledError):
        lost = WorkerLost(f"the value of Dask task {future.key} is no longer available: {exc}")
        lost.__cause__ = exc
        return lost
    return error or exc
