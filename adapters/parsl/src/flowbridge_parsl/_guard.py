"""Run a Parsl component so that it dies with the process that owns it.

``python -m flowbridge_parsl._guard [--session] TOKEN MODULE [ARGS...]`` runs ``MODULE``
as ``__main__`` (as ``python -m MODULE ARGS`` would) after starting a thread that
waits for the owner named by ``TOKEN`` to exit. Parsl leaves its interchange and
worker pool running when the owner is killed without cleanup; with the guard, the
interchange kills itself and a worker pool kills its process group (the block).

``--session`` first moves the process into a session of its own (the interchange):
Parsl starts the interchange in the driver's process group, where a terminal's
Ctrl-C reaches it too, kills it, and leaves ``DataFlowKernel.cleanup`` waiting on
it for minutes. Worker pools keep the process group their provider gave them,
since that is what the provider kills to cancel a block.

The token carries the owner's boot id and pid namespace: on another machine
(a compute node) the guard does nothing, and the pool ends on its own once the
interchange is gone (after its heartbeat threshold).
"""

from __future__ import annotations

import os
import runpy
import select
import signal
import sys
import threading
import time


def _read(path: str) -> str:
    try:
        with open(path) as fh:
            return fh.read().strip()
    except OSError:
        return ""


def _start_ticks(pid: int) -> str:
    """The process's start time since boot (clock ticks), to tell it from a later one with its pid."""
    stat = _read(f"/proc/{pid}/stat")
    fields = stat.rpartition(")")[2].split()
    return fields[19] if len(fields) > 19 else ""


def _machine() -> str:
    pidns = ""
    try:
        pidns = "".join(c for c in os.readlink("/proc/self/ns/pid") if c.isdigit())
    except OSError:
        pass
    return f"{_read('/proc/sys/kernel/random/boot_id')}:{pidns}"


def owner_token() -> str:
    """This process, as a guard started anywhere will recognise it."""
    pid = os.getpid()
    return f"{pid}:{_start_ticks(pid)}:{os.getpgrp()}:{_machine()}"


def _die(owner_group: int) -> None:
    group = os.getpgrp()
    if group not in (owner_group, 0, 1):  # a block started in its own group: take it all
        try:
            os.killpg(group, signal.SIGKILL)
        except OSError:
            pass
    os.kill(os.getpid(), signal.SIGKILL)


def _watch(pid: int, ticks: str, owner_group: int) -> None:
    try:
        fd = os.pidfd_open(pid)
    except ProcessLookupError:
        _die(owner_group)
        return
    except OSError:  # no pidfd here: poll
        fd = -1
    if _start_ticks(pid) != ticks:  # the owner is already gone and its pid reused
        _die(owner_group)
        return
    if fd >= 0:
        select.select([fd], [], [])
    else:
        while _start_ticks(pid) == ticks:
            time.sleep(1.0)
    _die(owner_group)


def main() -> None:
    argv = sys.argv[1:]
    if argv[:1] == ["--session"]:
        argv = argv[1:]
        try:
            os.setsid()
        except OSError:  # already a session leader
            pass
    if len(argv) < 2:
        sys.exit("usage: python -m flowbridge_parsl._guard [--session] TOKEN MODULE [ARGS...]")
    token, module, *args = argv
    try:
        pid, ticks, group, boot, pidns = token.split(":")
    except ValueError:
        sys.exit(f"flowbridge_parsl._guard: bad owner token {token!r}")
    if ticks and f"{boot}:{pidns}" == _machine():
        threading.Thread(
            target=_watch, args=(int(pid), ticks, int(group)), name="flowbridge-owner-guard", daemon=True
        ).start()
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
