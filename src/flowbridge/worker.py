"""What runs on the worker side: the same code for every adapter.

``call`` runs a task body (``def`` or ``async def``); an ``async def`` body runs on an
event loop that each worker thread keeps and reuses, never one ``asyncio.run`` per
task. ``call_pickled`` does the same for a body shipped by value (cloudpickle), which
is how functions from ``__main__``, notebooks and closures reach worker processes.
``run_command`` runs an executable task's command and returns its stdout.

``timed_call`` and ``timed_call_pickled`` are the same calls measured where they
run: the value comes back as a :class:`Ran` (value, wall-clock start and end,
host, pid, thread), an exception with the same facts in ``_fb_ran``. It travels in
the one result message the framework sends anyway; the engine takes it apart
(:func:`unwrap` where a framework hands a ``Ran`` to another task itself).
"""

from __future__ import annotations

import asyncio
import inspect
import os
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._errors import TaskFailed

if TYPE_CHECKING:
    import subprocess

__all__ = [
    "Ran",
    "call",
    "call_pickled",
    "dumps",
    "run_command",
    "timed_call",
    "timed_call_pickled",
    "timed_run_command",
    "unwrap",
]

STDERR_TAIL = 2000
_local = threading.local()


class _ThreadLoop:
    """This thread's loop for async task bodies, closed when the thread ends."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()

    def __del__(self) -> None:
        if not self.loop.is_running():  # a thread that ends inside a body's loop leaves it to the GC
            self.loop.close()


def _thread_loop() -> asyncio.AbstractEventLoop:
    holder = getattr(_local, "holder", None)
    if holder is None:
        holder = _local.holder = _ThreadLoop()
    return holder.loop


def _run_coroutine(coro: Any) -> Any:
    if asyncio._get_running_loop() is None:
        return _thread_loop().run_until_complete(coro)
    # This thread already runs a loop (an unusual worker): use a helper thread's loop.
    box: list[Any] = []

    def runner() -> None:
        try:
            box.append((True, _thread_loop().run_until_complete(coro)))
        except BaseException as exc:
            box.append((False, exc))

    t = threading.Thread(target=runner, name="flowbridge-async-body")
    t.start()
    t.join()
    ok, value = box[0]
    if ok:
        return value
    raise value


class Ran:
    """A task body's value with when and where it ran, measured on the worker.

    ``started`` and ``finished`` are ``time.time()`` readings around the body;
    ``where`` is ``(host, pid, thread name)``.
    """

    __slots__ = ("finished", "started", "value", "where")

    def __init__(self, value: Any, started: float, finished: float, where: tuple[str, int, str]) -> None:
        self.value = value
        self.started = started
        self.finished = finished
        self.where = where

    def __reduce__(self) -> tuple[Any, ...]:
        return Ran, (self.value, self.started, self.finished, self.where)

    def get(self) -> Any:
        """The body's value."""
        return self.value

    def __repr__(self) -> str:
        return f"<Ran {self.finished - self.started:.6f} s on {self.where}>"


_HOST = os.uname().nodename  # socket.gethostname(), without importing socket


def _here() -> tuple[str, int, str]:
    return _HOST, os.getpid(), threading.current_thread().name


def _mark(exc: BaseException, started: float, where: tuple[str, int, str]) -> None:
    """A failed body's times and place, carried by its exception (``_fb_ran``) to the engine."""
    try:
        exc._fb_ran = (started, time.time(), where)  # type: ignore[attr-defined]
    except (AttributeError, TypeError):  # an exception type without a __dict__
        pass


def unwrap(value: Any) -> Any:
    """A value as the task body returned it (a :class:`Ran` taken apart)."""
    return value.get() if type(value) is Ran else value


def timed_call(
    func: Callable[..., Any],
    args: Sequence[Any] = (),
    kwargs: Mapping[str, Any] | None = None,
) -> Ran:
    """:func:`call`, measured: the value as a :class:`Ran`; an exception carries the same in ``_fb_ran``."""
    started = time.time()
    try:
        value = call(func, args, kwargs)
    except BaseException as exc:
        _mark(exc, started, _here())
        raise
    return Ran(value, started, time.time(), _here())


def timed_call_pickled(payload: bytes) -> Ran:
    """:func:`call_pickled`, measured (see :func:`timed_call`)."""
    from .toolkit import codec

    return timed_call(*codec.load_call(payload))


def call(func: Callable[..., Any], args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None) -> Any:
    """Run a task body with its arguments; await it on this thread's loop if it is async."""
    result = func(*args, **(kwargs or {}))
    if inspect.isgenerator(result) or inspect.isasyncgen(result):  # asyncio.iscoroutine says yes to generators
        raise TypeError(
            f"task body {getattr(func, '__qualname__', func)!r} returned a generator; a task gives one "
            f"value: return a list (e.g. `list(...)`) instead"
        )
    if asyncio.iscoroutine(result):
        return _run_coroutine(result)
    return result


def dumps(func: Callable[..., Any], args: Sequence[Any] = (), kwargs: Mapping[str, Any] | None = None) -> bytes:
    """Serialise a call by value (:func:`flowbridge.toolkit.codec.pack_call`), for :func:`call_pickled`."""
    from .toolkit import codec

    return codec.pack_call(func, args, kwargs)[0]


def call_pickled(payload: bytes) -> Any:
    """Run a call serialised with :func:`dumps`."""
    from .toolkit import codec

    return call(*codec.load_call(payload))


def run_command(
    command: str | Sequence[str],
    *,
    cwd: str | None = None,
    env: Mapping[str, str] | None = None,
    on_start: Callable[[subprocess.Popen[str]], None] | None = None,
    task: str | None = None,
    owner: str | None = None,
) -> str:
    """Run an executable task's command; return its stdout, raise TaskFailed on failure.

    A ``str`` runs through ``/bin/sh``; a sequence is an argv list run without a shell,
    so its quoting is kept. The command runs in a session of its own (the terminal's
    Ctrl-C reaches the driver, not it), tagged with ``FLOWBRIDGE_TASK=task`` and
    ``FLOWBRIDGE_OWNER=owner`` when given, so :func:`flowbridge.toolkit.procs.reap`
    can kill it with everything it started. ``on_start`` receives the process.
    """
    import subprocess

    shell = isinstance(command, str)
    if task is not None or owner is not None:
        import os

        env = dict(os.environ if env is None else env)
        if task is not None:
            env["FLOWBRIDGE_TASK"] = task
        if owner is not None:
            env["FLOWBRIDGE_OWNER"] = owner
    try:
        proc = subprocess.Popen(
            command,
            shell=shell,
            cwd=cwd,
            env=None if env is None else dict(env),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
    except OSError as exc:
        raise TaskFailed(f"cannot run {list(command)!r}: {exc}", exit_code=127, stderr=str(exc)) from None
    if on_start is not None:
        on_start(proc)
    stdout, stderr = proc.communicate()
    if proc.returncode != 0:
        tail = stderr[-STDERR_TAIL:]
        how = (
            f"was killed by signal {-proc.returncode}"
            if proc.returncode < 0
            else f"exited with status {proc.returncode}"
        )
        shown = command if shell else " ".join(command)
        raise TaskFailed(
            f"command {shown!r} {how}" + (f"; stderr: {tail.strip()}" if tail.strip() else ""),
            exit_code=proc.returncode,
            stderr=tail,
        )
    return stdout


def timed_run_command(
    command: str | Sequence[str],
    *,
    on_start: Callable[[subprocess.Popen[str]], None] | None = None,
    **options: Any,
) -> Ran:
    """:func:`run_command`, measured: its stdout as a :class:`Ran`, ``where`` naming the command's own pid."""
    started = time.time()
    pid = [0]

    def seen(proc: subprocess.Popen[str]) -> None:
        pid[0] = proc.pid
        if on_start is not None:
            on_start(proc)

    try:
        stdout = run_command(command, on_start=seen, **options)
    except BaseException as exc:
        _mark(exc, started, (_HOST, pid[0], "command"))
        raise
    return Ran(stdout, started, time.time(), (_HOST, pid[0], "command"))
