"""What runs inside a RAPTOR worker for a function task, and how its outcome travels back.

RADICAL-Pilot hands a function's return value to msgpack; a value msgpack cannot
encode hangs the task and wedges the worker. So :func:`run` never returns the
task's value itself: it returns one ``str`` holding the pickled outcome (value,
exception, or "cancelled"), which :func:`outcome` decodes on the client.

RAPTOR runs every task in a forked process under ``asyncio.run``: ``async def``
bodies are awaited on that loop (flowbridge.worker.call would start a second one).

Cancelling a running task: RAPTOR cannot. When the client shares the machine, it
writes ``flowbridge.cancel`` into the task sandbox and sends SIGUSR1 to the pid
that :func:`run` wrote to ``flowbridge.pid``; the body is interrupted and the
task ends normally as "cancelled", so the worker frees its cores.
"""

from __future__ import annotations

import asyncio
import base64
import io
import os
import pickle
import signal
import socket
import sys
import time
from typing import Any

PID_FILE = "flowbridge.pid"
CANCEL_FILE = "flowbridge.cancel"
OK, ERROR, CANCELLED = "ok", "error", "cancelled"


class _Cancelled(BaseException):
    """Raised in the task body by SIGUSR1: the client cancelled the task."""


def machine() -> str:
    """This boot of this machine (and pid namespace): a pid means the same process only here."""
    parts = [os.uname().nodename]
    try:
        with open("/proc/sys/kernel/random/boot_id") as fh:
            parts.append(fh.read().strip())
    except OSError:
        pass
    try:
        parts.append(os.readlink("/proc/self/ns/pid"))
    except OSError:
        pass
    return ":".join(parts)


def dumps(func: Any, args: Any, kwargs: Any) -> str:
    """A call, serialised by value where needed (``__main__``, closures) with dill.

    dill rather than cloudpickle: RAPTOR workers have dill loaded already, and each
    task runs in a fresh fork of the worker, so the payload costs no import there.
    """
    import dill

    return base64.b64encode(dill.dumps((func, tuple(args), dict(kwargs)), recurse=True)).decode("ascii")


class _Outcome(pickle.Pickler):
    """Pickle, with the classes of the driver's ``__main__`` (the user's script) kept by name.

    The worker knows them only as dill rebuilt them from the task's payload; sent by
    value they would come back as copies (``isinstance`` false on the driver).
    """

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, type) and obj.__module__ == "__main__":
            import dill

            return (_driver_class, (obj.__qualname__, dill.dumps(obj, recurse=True)))
        return NotImplemented


def _driver_class(qualname: str, by_value: bytes) -> Any:
    """On the driver: its own ``__main__`` class of that name, else the copy the worker sent."""
    obj: Any = sys.modules.get("__main__")
    try:
        for part in qualname.split("."):
            obj = getattr(obj, part)
        if isinstance(obj, type):
            return obj
    except AttributeError:
        pass
    import dill

    return dill.loads(by_value)


def _encode(kind: str, value: Any, ran: tuple[float, float, tuple[str, int, str]] | None = None) -> str:
    """The outcome as text: pickle when it can ("p", ``__main__`` classes by name), else dill ("d").

    ``ran``: when and where the body ran (``flowbridge.worker.Ran``'s fields), travelling with it.
    """
    try:
        buffer = io.BytesIO()
        _Outcome(buffer).dump((kind, value, ran))
        return "p" + base64.b64encode(buffer.getvalue()).decode("ascii")
    except Exception:
        pass
    import dill

    try:
        return "d" + base64.b64encode(dill.dumps((kind, value, ran), recurse=True)).decode("ascii")
    except Exception as exc:
        if kind == OK:
            error: BaseException = TypeError(
                f"the task's return value ({type(value).__name__}) cannot be pickled: {exc}"
            )
        else:
            import traceback

            text = "".join(traceback.format_exception(value)).strip()
            error = RuntimeError(f"{type(value).__qualname__}: {value} (the exception could not be pickled)\n{text}")
        return "p" + base64.b64encode(pickle.dumps((ERROR, error, ran))).decode("ascii")


async def run(payload: str, path: tuple[str, ...] = ()) -> str:
    """Run one call serialised by :func:`dumps`; return its encoded outcome.

    ``path`` is the client's ``sys.path``: modules next to the user's script import
    here too (the worker shares the machine or a file system with the client).
    """
    for entry in path:
        if entry not in sys.path:
            sys.path.append(entry)
    here = os.getcwd()  # RAPTOR runs the task in its sandbox
    loop = asyncio.get_running_loop()
    state: dict[str, Any] = {"body": False, "task": None}
    started = 0.0

    def interrupt(signum: int, frame: Any) -> None:
        if not state["body"]:
            return
        if state["task"] is not None:
            loop.call_soon_threadsafe(state["task"].cancel)
        else:
            raise _Cancelled

    pid_file = ""
    try:
        signal.signal(signal.SIGUSR1, interrupt)
        pid_file = os.path.join(here, PID_FILE)
        with open(pid_file, "w") as fh:
            fh.write(f"{os.getpid()} {machine()}\n")
    except (OSError, ValueError):  # not the main thread, or no sandbox: no cancelling then
        pid_file = ""
    try:
        if os.path.exists(os.path.join(here, CANCEL_FILE)):
            return _encode(CANCELLED, None)
        import dill

        func, args, kwargs = dill.loads(base64.b64decode(payload))
        state["body"] = True
        started = time.time()
        result = func(*args, **kwargs)
        if asyncio.iscoroutine(result):
            state["task"] = asyncio.ensure_future(result)
            result = await state["task"]
        state["body"] = False
    except (_Cancelled, asyncio.CancelledError):
        state["body"] = False
        return _encode(CANCELLED, None)
    except Exception as exc:
        state["body"] = False
        return _encode(ERROR, exc, _ran(started) if started else None)
    except BaseException as exc:
        state["body"] = False
        return _encode(ERROR, RuntimeError(f"the task raised {type(exc).__name__}: {exc}"))
    finally:
        if pid_file:
            try:
                os.unlink(pid_file)
            except OSError:
                pass
    return _encode(OK, result, _ran(started))


def _ran(started: float) -> tuple[float, float, tuple[str, int, str]]:
    return started, time.time(), (socket.gethostname(), os.getpid(), "raptor")


def outcome(encoded: Any) -> tuple[str, Any]:
    """The (kind, value) a :func:`run` call returned; ValueError if it is not one."""
    if not isinstance(encoded, str) or encoded[:1] not in ("p", "d"):
        raise ValueError(f"not a flowbridge outcome: {type(encoded).__name__}")
    data = base64.b64decode(encoded[1:])
    if encoded[0] == "p":
        kind, value, ran = pickle.loads(data)
    else:
        import dill

        kind, value, ran = dill.loads(data)
    if ran is not None:  # the engine writes it on the attempt's record
        if kind == OK:
            from flowbridge.worker import Ran

            value = Ran(value, *ran)
        elif isinstance(value, BaseException):
            value._fb_ran = ran  # type: ignore[attr-defined]
    return kind, value


def cancel_locally(sandbox: str) -> bool:
    """Stop a function task running on this machine in ``sandbox``; False if it cannot be reached."""
    try:
        os.makedirs(sandbox, exist_ok=True)
        with open(os.path.join(sandbox, CANCEL_FILE), "w"):
            pass
    except OSError:
        return False
    try:
        with open(os.path.join(sandbox, PID_FILE)) as fh:
            pid_text, _, where = fh.read().strip().partition(" ")
        pid = int(pid_text)
    except (OSError, ValueError):
        return True  # not started yet: it will see the cancel file and return at once
    if where != machine():
        return False
    try:
        os.kill(pid, signal.SIGUSR1)
    except OSError:
        pass
    return True
