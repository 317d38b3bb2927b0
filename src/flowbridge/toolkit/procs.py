"""Processes an adapter started: tag them, find them by tag, kill them, also after the owner died.

Every process flowbridge starts for an adapter carries ``FLOWBRIDGE_OWNER=<tag>``
in its environment (the adapter's run directory, by convention), and every command
of an executable task also ``FLOWBRIDGE_TASK=<uid>``. Environments are inherited,
so the tag follows a worker's children, a shell's pipeline and an MPI launcher's
ranks. Killing by tag is then one scan of ``/proc`` on this host: it reaches what
``killpg`` misses (a process that started its own session) and never touches what
the user brought, which carries no tag.

:class:`Reaper` is a small watcher process (its own session, so the terminal's
Ctrl-C does not reach it) that kills everything tagged with an owner's tag and
removes its run directory once that owner exits, however it exits: a second
Ctrl-C, ``kill -9``, a Jupyter kernel restart.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping

__all__ = [
    "OWNER_ENV",
    "TASK_ENV",
    "Reaper",
    "alive",
    "find",
    "group_members",
    "kill",
    "reap",
    "start_ticks",
    "stat",
    "tag_env",
]

OWNER_ENV = "FLOWBRIDGE_OWNER"
TASK_ENV = "FLOWBRIDGE_TASK"


def _read(path: str, mode: str = "r") -> str | bytes | None:
    try:
        with open(path, mode) as fh:
            data: str | bytes = fh.read()
            return data
    except OSError:
        return None


def stat(pid: int) -> tuple[str, int, int, str] | None:
    """``(state, ppid, pgid, start ticks)`` of a process from ``/proc``; None when it is gone."""
    text = _read(f"/proc/{pid}/stat")
    if not isinstance(text, str):
        return None
    fields = text.rpartition(")")[2].split()
    if len(fields) < 20:
        return None
    return fields[0], int(fields[1]), int(fields[2]), fields[19]


def start_ticks(pid: int) -> str:
    """When the process started (clock ticks since boot): tells it from a later one with its pid."""
    info = stat(pid)
    return info[3] if info else ""


def alive(pid: int) -> bool:
    """Running and not a zombie (``kill -0`` says yes to zombies)."""
    info = stat(pid)
    return info is not None and info[0] not in ("Z", "X")


def _pids() -> Iterable[int]:
    try:
        entries = os.listdir("/proc")
    except OSError:
        return ()
    return (int(e) for e in entries if e.isdigit())


def group_members(pgid: int) -> list[int]:
    """Live processes of a process group."""
    out = []
    for pid in _pids():
        info = stat(pid)
        if info is not None and info[2] == pgid and info[0] not in ("Z", "X"):
            out.append(pid)
    return out


def find(env: Mapping[str, str] | None = None, *, text: str | None = None) -> list[int]:
    """Live processes (never this one) whose environment holds every ``NAME=VALUE`` of ``env``,
    or whose command line or environment contains ``text``."""
    entries = [f"{k}={v}".encode() for k, v in (env or {}).items()]
    needle = text.encode() if text else None
    me = os.getpid()
    found = []
    for pid in _pids():
        if pid == me or not alive(pid):
            continue
        environ = _read(f"/proc/{pid}/environ", "rb")
        if not isinstance(environ, bytes):
            continue
        if entries:
            have = set(environ.split(b"\0"))
            if not all(e in have for e in entries):
                continue
        if needle is not None:
            cmdline = _read(f"/proc/{pid}/cmdline", "rb") or b""
            if needle not in environ and needle not in cmdline:
                continue
        found.append(pid)
    return found


def kill(pids: Iterable[int], sig: int = signal.SIGKILL) -> None:
    """Signal each process; those already gone are skipped."""
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def reap(env: Mapping[str, str], *, grace: float = 0.0, wait: float = 2.0) -> list[int]:
    """Kill every process tagged with ``env`` (SIGTERM first when ``grace`` > 0); return their pids.

    Waits up to ``wait`` seconds for them to be gone, so a caller that checks
    right after sees nothing left. Processes that fork while being killed are
    caught by a second pass.
    """
    killed: list[int] = []
    for _ in range(3):
        pids = find(env)
        if not pids:
            break
        if grace > 0 and not killed:
            kill(pids, signal.SIGTERM)
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline and any(alive(p) for p in pids):
                time.sleep(0.05)
        kill(pids)
        killed.extend(p for p in pids if p not in killed)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and any(alive(p) for p in killed):
        time.sleep(0.02)
    return killed


def tag_env(owner: str, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) plus the owner tag, for a child to start with."""
    env = dict(os.environ if base is None else base)
    env[OWNER_ENV] = owner
    return env


class Reaper:
    """A watcher process that kills every process tagged ``owner`` once this process exits.

    Start it before the processes it guards; :meth:`stop` at a clean shutdown
    (after the adapter killed its own). It removes ``run_dir`` too, when given.
    Cost: one small Python process, idle on a pidfd until the owner exits.
    """

    def __init__(self, owner: str, run_dir: str | os.PathLike[str] | None = None) -> None:
        self.owner = owner
        env = {k: v for k, v in os.environ.items() if k not in (OWNER_ENV, TASK_ENV)}
        me = os.getpid()
        argv = [sys.executable, "-m", "flowbridge.toolkit._reaper", str(me), start_ticks(me), owner]
        if run_dir is not None:
            argv.append(os.fspath(run_dir))
        self.proc = subprocess.Popen(
            argv,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
            close_fds=True,
        )

    def stop(self) -> None:
        """The owner cleaned up itself: end the watcher without it killing anything."""
        proc = self.proc
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(2)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
