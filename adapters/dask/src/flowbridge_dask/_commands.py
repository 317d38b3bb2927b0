"""Executable tasks on Dask workers: commands tagged per task, and killed by tag from the driver.

A command runs through :func:`flowbridge.worker.run_command` in a session of its own,
tagged ``FLOWBRIDGE_TASK=<owner>:<key>`` (and ``FLOWBRIDGE_OWNER=<owner>``); every
process it starts inherits the tag. Cancelling the task (``cancel()``, ``timeout=``,
``shutdown(cancel=True)``, Ctrl-C) sends :func:`kill_commands` to every worker with
``client.run``: it reaches workers on other hosts too, and on each host kills the
tagged processes found in ``/proc``. A tag killed before its command started is
remembered, so a command that starts a moment later is killed at once.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Sequence

from flowbridge import TaskFailed
from flowbridge.toolkit import procs
from flowbridge.worker import Ran, timed_run_command

__all__ = ["kill_commands", "run_tagged_command"]

_lock = threading.Lock()
_doomed: dict[str, None] = {}  # tags killed on this worker (insertion-ordered, bounded)
_DOOMED_MAX = 10_000


def run_tagged_command(command: str | Sequence[str], task: str, owner: str) -> Ran | str:
    """On the worker: run an executable task's command tagged with its task and owner."""

    def on_start(proc: object) -> None:
        with _lock:
            doomed = task in _doomed
        if doomed:  # cancelled while it was starting
            kill_commands([task])

    try:
        return timed_run_command(command, task=task, owner=owner, on_start=on_start)
    except TaskFailed:
        with _lock:
            killed = task in _doomed
        if killed:  # flowbridge killed it: the task is cancelled, nobody wants this error (nor Dask's log of it)
            return ""
        raise


def kill_commands(tags: Sequence[str] = (), prefix: str | None = None) -> int:
    """On each worker (through ``client.run``): SIGKILL the processes tagged with one of ``tags``,
    or with any task tag starting with ``prefix``; how many were signalled."""
    with _lock:
        for tag in tags:
            _doomed[tag] = None
        while len(_doomed) > _DOOMED_MAX:
            del _doomed[next(iter(_doomed))]
    wanted = {f"{procs.TASK_ENV}={tag}".encode() for tag in tags}
    start = f"{procs.TASK_ENV}={prefix}".encode() if prefix else None
    me = os.getpid()
    killed: set[int] = set()
    for _ in range(2):  # a second pass for what forked while the first was killing
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == me:
                continue
            try:
                with open(f"/proc/{entry}/environ", "rb") as fh:
                    environ = fh.read().split(b"\0")
            except OSError:
                continue
            if any(e in wanted or (start is not None and e.startswith(start)) for e in environ):
                found.append(int(entry))
        found = [pid for pid in found if procs.alive(pid)]
        if not found:
            break
        procs.kill(found, signal.SIGKILL)
        killed.update(found)
    return len(killed)
