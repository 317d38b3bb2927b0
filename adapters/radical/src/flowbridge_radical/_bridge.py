"""The task bridge: flowbridge tasks into RADICAL-Pilot, their outcomes back onto the engine's loop.

``submit`` (on the engine's loop) registers an asyncio future under a client-side task
uid and queues the description; one thread hands queued descriptions to RP in batches
and forwards cancellations. RP reports task states on its own thread (one TaskManager
callback); on a final state the outcome is read there and handed to the loop with
``call_soon_threadsafe``. A pilot that dies fires no task callbacks, so a pilot callback
fails every pending task with WorkerLost.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import os
import queue
import sys
import threading
import urllib.parse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from flowbridge import FlowbridgeError, TaskTimeout, WorkerLost
from flowbridge.adapter import TaskSpec
from flowbridge.toolkit import procs

from . import _environ, _remote, _stop, _tasks
from ._raptor import Raptor

if TYPE_CHECKING:
    import radical.pilot as rp

_log = logging.getLogger("flowbridge.radical")
FINAL = ("DONE", "FAILED", "CANCELED")
#: Seconds to wait for cancelled tasks at shutdown.
CANCEL_WAIT = 5.0


class Worker:
    """One daemon thread running RP calls in order (a ThreadPoolExecutor's thread is joined at exit)."""

    def __init__(self, name: str) -> None:
        self._queue: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...]] | None] = queue.SimpleQueue()
        self._open = True
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        if not self._open:
            raise RuntimeError("closed")
        self._queue.put((fn, args))

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            fn, args = item
            try:
                fn(*args)
            except Exception:
                _log.exception("RADICAL-Pilot call %s failed", getattr(fn, "__name__", fn))

    def shutdown(self, wait: float | None = None) -> bool:
        """Stop taking calls; wait up to ``wait`` s (None: no limit) for the queued ones; True when done."""
        if self._open:
            self._open = False
            self._queue.put(None)
        if threading.current_thread() is self._thread:
            return False
        self._thread.join(wait)
        return not self._thread.is_alive()


class Entry:
    """One submitted attempt: its future on the engine's loop and what RP needs to know of it."""

    __slots__ = ("cancelled", "command", "final", "future", "kind", "label", "task", "uid", "walltime")

    def __init__(self, uid: str, future: asyncio.Future[Any], fields: dict[str, Any], spec: TaskSpec) -> None:
        self.uid = uid
        self.kind = spec.kind
        self.future = future
        self.label = f"{spec.uid} ({spec.name})"
        self.command = spec.command
        self.walltime: float | None = fields.get("timeout")
        self.task: Any = None  # the rp.Task, once submitted
        self.final = False
        self.cancelled = False


class TaskBridge:
    """The tasks one backend has in flight on RP, from ``submit`` to their settled futures."""

    def __init__(self, token: str, raptor: Raptor, *, local: bool) -> None:
        self.token = token
        self.raptor = raptor
        self.local = local
        self.task_manager: rp.TaskManager | None = None  # RP's TaskManager and pilot, once attached
        self.pilot: rp.Pilot | None = None
        self.closing = False  # shutdown began: no new task, and ends of RAPTOR or pilot are expected
        self.broken: BaseException | None = None  # the pilot ended: every task fails with this
        self._seq = itertools.count(1)
        self._live: dict[str, Entry] = {}
        self._lock = threading.Lock()
        self._outbox: list[tuple[Entry, dict[str, Any]]] = []
        self._flushing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pool: Worker | None = None
        self._pilot_sandbox: str | None = None
        # RP keys callbacks by id(): keep one bound method of each for (un)registering.
        self._task_cb = self._on_task_state
        self._pilot_cb = self._on_pilot_state

    def open(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._pool = Worker("flowbridge-radical")

    def attach(self, task_manager: rp.TaskManager, pilot: rp.Pilot) -> None:
        """Hear the states of this TaskManager's tasks and of the pilot (on the start thread)."""
        self.task_manager, self.pilot = task_manager, pilot
        task_manager.register_callback(self._task_cb)
        pilot.register_callback(self._pilot_cb)
        if pilot.state in FINAL:
            self.broken = WorkerLost(f"the RADICAL-Pilot pilot {pilot.uid} has ended ({pilot.state})")

    def detach(self) -> None:
        if self.task_manager is None or self.pilot is None:
            return
        for unregister, cb in (
            (self.task_manager.unregister_callback, self._task_cb),
            (self.pilot.unregister_callback, self._pilot_cb),
        ):
            try:
                unregister(cb)
            except Exception:
                pass

    def close(self) -> None:
        """Shutdown began: take no more tasks, cancel the futures of those in flight."""
        self.closing = True
        self._outbox.clear()
        with self._lock:
            entries = list(self._live.values())
        for entry in entries:
            if not entry.future.done():
                entry.future.cancel()

    def stop_submitting(self, wait: float | None) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=wait)

    def let_go(self) -> None:
        """Hold no RP object any more, so that what was closed can be collected."""
        with self._lock:
            self._live.clear()
        self.task_manager = self.pilot = self.raptor.master = None

    def task_texts(self) -> list[str]:
        """What the environment of every command of this backend's tasks holds (on this host only)."""
        return [f"{procs.TASK_ENV}={self._task_tag(self.token + '.')}"] if self.local else []

    # -- submit (the engine's loop) -------------------------------------------------------------

    def submit(self, spec: TaskSpec, fields: dict[str, Any]) -> asyncio.Future[Any]:
        loop = self._loop or asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        broken = self.broken or (self.raptor.lost if spec.kind == "function" else None)
        if broken is not None or self.closing:
            future.set_exception(broken or WorkerLost(f"the 'radical' backend is shutting down (task {spec.uid})"))
            return future
        uid = f"{self.token}.{next(self._seq):06d}"
        fields["uid"] = uid
        if spec.kind == "executable":
            # Every process of the command carries the tag: shutdown kills them on this host itself.
            fields["environment"] = {**fields.get("environment", {}), procs.TASK_ENV: self._task_tag(uid)}
        fields["name"] = spec.name[:64]
        entry = Entry(uid, future, fields, spec)
        with self._lock:
            self._live[uid] = entry
        future.add_done_callback(functools.partial(self._on_future_done, entry))
        self._outbox.append((entry, fields))
        if not self._flushing:
            self._flushing = True
            loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        batch, self._outbox = self._outbox, []
        self._flushing = False
        if batch and self._pool is not None:
            try:
                self._pool.submit(self._submit_batch, batch)
            except RuntimeError:  # shut down meanwhile
                pass

    def _submit_batch(self, batch: list[tuple[Entry, dict[str, Any]]]) -> None:
        """On the submitting thread: hand descriptions to RP, forward cancels that came first."""
        rp = _environ.import_rp()

        todo, descriptions = [], []
        path = tuple(p for p in sys.path if p)
        for entry, fields in batch:
            if entry.future.done():  # cancelled before it reached RP
                self._forget(entry)
                continue
            if entry.kind == "function":
                fields = Raptor.described(rp, fields, path)
            todo.append(entry)
            descriptions.append(rp.TaskDescription(fields))
        batch.clear()  # the payloads now live in RP's descriptions
        if not descriptions:
            return
        tmgr = self.task_manager
        try:
            if tmgr is None:
                raise RuntimeError("the backend holds no TaskManager (not started, or shut down)")
            tasks = tmgr.submit_tasks(descriptions)
        except Exception as exc:
            error = FlowbridgeError(f"RADICAL-Pilot refused the task: {type(exc).__name__}: {exc}")
            for entry in todo:
                self._forget(entry)
                self._post(entry.future, _remote.ERROR, error)
            return
        cancelled = []
        for entry, rp_task in zip(todo, tasks, strict=True):
            entry.task = rp_task
            if entry.cancelled and not entry.final:
                cancelled.append(entry)
        if cancelled:
            self._cancel_entries(cancelled)

    def _on_future_done(self, entry: Entry, future: asyncio.Future[Any]) -> None:
        """On the loop: the engine cancelled the handle; stop the RP task too."""
        if not future.cancelled() or entry.final or self.closing:
            return
        entry.cancelled = True
        if entry.task is None or self._pool is None:
            return  # _submit_batch drops it, or cancels it right after submitting
        try:
            self._pool.submit(self._cancel_entries, [entry])
        except RuntimeError:
            pass

    # -- cancel (the submitting thread, or the closing one) ---------------------------------------

    def _cancel_entries(self, entries: list[Entry]) -> None:
        """RP kills running executables; RAPTOR functions on this machine are signalled here."""
        uids = []
        for entry in entries:
            if entry.final or entry.task is None:
                continue
            if entry.kind == "function" and self.local:
                # RAPTOR tasks report no sandbox until they end; it is <pilot sandbox>/<uid>.
                where = _tasks.sandbox_path(entry.task) or self._sandbox_of(entry.uid)
                if where and _remote.cancel_locally(where):
                    continue
            uids.append(entry.uid)
        if uids and self.task_manager is not None:
            try:
                self.task_manager.cancel_tasks(uids)
            except Exception:
                _log.debug("cancel_tasks(%s) failed", uids, exc_info=True)

    def cancel_all(self, wait: bool = True) -> None:
        """Cancel every task in flight (and a RAPTOR of ours); ``wait``: until they end, at most CANCEL_WAIT s."""
        tmgr = self.task_manager
        if tmgr is None:  # never attached: nothing of ours reached RP
            return
        with self._lock:
            entries = [e for e in self._live.values() if e.task is not None and not e.final]
        if not wait and self.local:
            # In a hurry: kill the running commands here, at once (RP's cancel takes a round trip).
            _stop.kill_by_text(self.task_texts(), wait=0.5)
        self._cancel_entries(entries)
        # Executables are killed by RP (~0.2 s); signalled functions end on their own, and an
        # owned RAPTOR worker takes its running functions with it.
        waited = [e.uid for e in entries if e.kind == "executable"]
        if self.raptor.owned and self.raptor.master is not None:
            raptors = sorted(self.raptor.uids)
            try:
                tmgr.cancel_tasks(raptors)
            except Exception:
                _log.debug("cancelling RAPTOR failed", exc_info=True)
            waited += raptors
        if wait and waited and self.pilot is not None and self.pilot.state not in FINAL:
            try:
                tmgr.wait_tasks(uids=waited, state=list(FINAL), timeout=CANCEL_WAIT)
            except Exception:
                _log.debug("waiting for cancelled tasks failed", exc_info=True)
            if _log.isEnabledFor(logging.DEBUG):
                states = {t.uid: t.state for t in tmgr.get_tasks(waited)}
                _log.debug("after cancelling: %s", {u: s for u, s in states.items() if s not in FINAL})

    def pilot_sandbox(self) -> str | None:
        """The pilot's sandbox as a local path (looked up once)."""
        if self._pilot_sandbox is None:
            url = getattr(self.pilot, "pilot_sandbox", None)
            self._pilot_sandbox = urllib.parse.urlparse(str(url)).path if url else ""
        return self._pilot_sandbox or None

    def _sandbox_of(self, uid: str) -> str | None:
        sandbox = self.pilot_sandbox()
        return os.path.join(sandbox, uid) if sandbox else None

    def _task_tag(self, uid: str) -> str:
        return f"radical:{os.uname().nodename}:{uid}"

    def _forget(self, entry: Entry) -> None:
        with self._lock:
            self._live.pop(entry.uid, None)

    # -- RP callbacks (RP's threads) --------------------------------------------------------------

    def _on_task_state(self, task: Any, state: str) -> None:
        if state not in FINAL:
            return
        uid = task.uid
        if uid in self.raptor.uids:
            if not self.closing:
                error = self.raptor.ended(uid, state)
                if error is not None:
                    self._fail_live(error, lambda entry: entry.kind == "function")
            return
        with self._lock:
            entry = self._live.pop(uid, None)
        if entry is None:
            return
        entry.final = True
        if entry.future.done():
            return
        try:
            if state == "CANCELED":
                kind, value = self._canceled(entry)
            elif entry.kind == "function":
                kind, value = _tasks.function_outcome(task, state, entry.walltime, entry.label)
            else:
                kind, value = _tasks.executable_outcome(task, state, entry.command)
        except Exception as exc:
            _log.exception("reading the outcome of RP task %s", uid)
            kind, value = _remote.ERROR, FlowbridgeError(f"cannot read the outcome of task {entry.label}: {exc!r}")
        self._post(entry.future, kind, value)

    def _canceled(self, entry: Entry) -> tuple[str, Any]:
        if entry.walltime is not None:
            return _remote.ERROR, TaskTimeout(f"task {entry.label} ran past its walltime of {entry.walltime} s")
        if self.broken is not None:
            return _remote.ERROR, self.broken
        return _remote.CANCELLED, None  # cancelled outside flowbridge

    def _on_pilot_state(self, pilots: Any, state: str | None = None) -> None:
        # RP 1.103 calls pilot-level callbacks with a list of pilots and no state.
        pilot = next((p for p in (pilots if isinstance(pilots, list) else [pilots]) if p is self.pilot), None)
        if pilot is None or self.closing:
            return
        state = pilot.state
        if state not in FINAL:
            return
        error = WorkerLost(f"the RADICAL-Pilot pilot {pilot.uid} ended ({state}) with tasks still to run")
        self.broken = error
        if self._live:
            _log.warning("%s", error)
        self._fail_live(error, lambda entry: True)

    def _fail_live(self, error: BaseException, which: Callable[[Entry], bool]) -> None:
        with self._lock:
            lost = [e for e in self._live.values() if which(e)]
            for entry in lost:
                del self._live[entry.uid]
        for entry in lost:
            entry.final = True
            self._post(entry.future, _remote.ERROR, error)

    def _post(self, future: asyncio.Future[Any], kind: str, value: Any) -> None:
        loop = future.get_loop()
        try:
            loop.call_soon_threadsafe(_settle, future, kind, value)
        except RuntimeError:  # the loop is closed: nobody waits any more
            pass


def _settle(future: asyncio.Future[Any], kind: str, value: Any) -> None:
    if future.done():
        return
    if kind == _remote.OK:
        future.set_result(value)
    elif kind == _remote.CANCELLED:
        future.cancel()
    else:
        future.set_exception(value)
