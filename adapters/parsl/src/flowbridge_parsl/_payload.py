"""How a function task travels: through the core's codec, the function apart, dependencies top-level.

Parsl pickles a function by reference and only sees futures passed directly as
arguments. So every function task runs through the same small runner below
(importable on any worker that has flowbridge-parsl), with the user's function
and arguments packed by :mod:`flowbridge.toolkit.codec`: by value, with upstream
handles found anywhere in the arguments pulled out and given to Parsl as
top-level arguments, so the DataFlowKernel waits for them and hands their values
to the runner, which puts them back where they were.

The function is packed apart from its arguments, so that both sides can reuse it
(:class:`~flowbridge.toolkit.codec.Functions` on the driver, a cache per bytes on
the worker). The outcome comes back as :func:`~flowbridge.toolkit.codec.pack_outcome`
bytes, which Parsl's serialiser (dill, pure Python) passes on at the cost of one
``bytes``, not of an object graph; the handle unpacks it on the driver.
"""

from __future__ import annotations

from typing import Any

from flowbridge import worker
from flowbridge.toolkit import codec

# -- driver side ---------------------------------------------------------------------------


def pack(function: bytes, arguments: bytes) -> bytes:
    """The function and its arguments as one ``bytes``: Parsl serialises and walks every argument
    of an app (dill, in Python), so one costs least."""
    return b"".join((len(function).to_bytes(4, "little"), function, arguments))


# -- worker side -------------------------------------------------------------------------


def run_function(payload: bytes, *deps: Any, **_parsl: Any) -> bytes:
    """Run a call packed by :func:`pack`; ``deps`` are the packed outcomes of its upstream tasks.

    ``_parsl`` swallows what Parsl adds to an app's keyword arguments
    (``parsl_resource_specification``, ``walltime``): it never reaches the user's function.
    """
    view = memoryview(payload)
    end = 4 + int.from_bytes(view[:4], "little")
    func = codec.load_function(bytes(view[4:end]))
    # An upstream's result comes as it left its runner: a packed worker.Ran.
    args, kwargs = codec.load_arguments(view[end:], [worker.unwrap(codec.load_outcome(dep)) for dep in deps])
    return codec.pack_outcome(worker.timed_call(func, args, kwargs))


def run_command(
    command: str | tuple[str, ...],
    tag: str | None = None,
    owner: str | None = None,
    marker: str | None = None,
    **_parsl: Any,
) -> bytes:
    """Bash-app semantics: stdout is the result (measured: a packed ``worker.Ran``), a non-zero exit is TaskFailed.

    The command carries ``FLOWBRIDGE_TASK=tag`` and ``FLOWBRIDGE_OWNER=owner``, so the
    driver kills it with its tree on cancel (same host). ``marker`` is a file the driver
    creates when it cancels the task: a command not started yet never starts, and one
    running is killed within :data:`POLL` s, wherever the file is visible (a shared
    filesystem reaches remote nodes).
    """
    import os

    if marker is not None and os.path.exists(marker):
        raise RuntimeError(f"command {command!r} not run: its task was cancelled before a worker took it")

    def watch(proc: Any) -> None:
        if marker is None:
            return
        import threading

        threading.Thread(target=_watch_marker, args=(proc, marker, tag), daemon=True).start()

    return codec.pack_outcome(worker.timed_run_command(command, task=tag, owner=owner, on_start=watch))


POLL = 0.25  # seconds between looks at a running command's cancel marker


def _watch_marker(proc: Any, marker: str, tag: str | None) -> None:
    import os
    import signal
    import time

    while proc.poll() is None:
        if os.path.exists(marker):
            try:
                os.killpg(proc.pid, signal.SIGKILL)  # its own session: the whole group
            except OSError:
                pass
            if tag is not None:
                from flowbridge.toolkit import procs

                procs.reap({procs.TASK_ENV: tag})  # what left the group
            return
        time.sleep(POLL)
