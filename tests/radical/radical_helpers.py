"""Helpers for the RADICAL-Pilot tests: find the processes a run left behind."""

from __future__ import annotations

import os
import time

#: The environment before any backend started (conftest imports this first): it must stay so.
ENV_BEFORE = dict(os.environ)


def processes_mentioning(text: str, files: bool = False) -> list[str]:
    """Live (non-zombie) processes whose command line or environment contains ``text``; with ``files``
    also those whose working directory or open files do (RP's proxy worker is a fork of the driver:
    only its open log files tell; but a live RP client also holds files of its pilots open)."""
    found = []
    needle = text.encode()
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/stat", "rb") as fh:
                if fh.read().rpartition(b")")[2].split()[0] == b"Z":
                    continue
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmdline = fh.read()
            with open(f"/proc/{pid}/environ", "rb") as fh:
                environ = fh.read()
        except OSError:
            continue
        if needle in cmdline or needle in environ or (files and _uses(pid, text)):
            shown = cmdline.replace(b"\0", b" ").decode(errors="replace").strip()[:160]
            found.append(f"{pid}: {shown}")
    return found


def processes_working_in(path: str) -> list[str]:
    """Live processes whose working directory lies under ``path``, shown as processes_mentioning shows them."""
    root = os.path.join(path, "")
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
            with open(f"/proc/{pid}/stat") as fh:
                if fh.read().rpartition(")")[2].split()[0] in ("Z", "X"):
                    continue
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                cmdline = fh.read()
        except OSError:
            continue
        if os.path.join(cwd, "").startswith(root):
            shown = cmdline.replace(b"\0", b" ").decode(errors="replace").strip()[:160]
            found.append(f"{pid}: {shown}")
    return found


def wait_until_gone(text: str, seconds: float = 15.0, files: bool = False) -> list[str]:
    """Processes still mentioning ``text`` after up to ``seconds`` (processes take a moment to exit)."""
    deadline = time.monotonic() + seconds
    left = processes_mentioning(text, files)
    while left and time.monotonic() < deadline:
        time.sleep(0.5)
        left = processes_mentioning(text, files)
    return left


def close_leftover_zmq() -> None:
    """Close the ZMQ sockets and contexts closed RADICAL-Pilot sessions left to the garbage collector.

    RP "relies on GC for destruction"; pyzmq warns about every unclosed one it destroys, and
    some stay referenced until a later test in another folder, where the warning (an error
    under ``-W error``) would land. Only safe once no RP session is open in this process.
    """
    import gc
    import sys

    zmq = sys.modules.get("zmq")
    if zmq is None:
        return
    shared = getattr(zmq.Context, "_instance", None)
    objects = gc.get_objects()
    for obj in objects:
        if isinstance(obj, zmq.Socket) and not obj.closed:
            obj.close(linger=0)
    for obj in objects:
        if isinstance(obj, zmq.Context) and obj is not shared and not obj.closed:
            obj.destroy(linger=0)


def _uses(pid: str, text: str) -> bool:
    """The process works in, or holds a file open under, a path containing ``text``."""
    links = [f"/proc/{pid}/cwd"]
    try:
        links += [f"/proc/{pid}/fd/{fd}" for fd in os.listdir(f"/proc/{pid}/fd")]
    except OSError:
        return False
    for link in links:
        try:
            if text in os.readlink(link):
                return True
        except OSError:
            continue
    return False
