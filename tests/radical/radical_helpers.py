"""Helpers for the RADICAL-Pilot tests: find the processes a run left behind."""

from __future__ import annotations

import os
import time

#: The environment before any backend started (conftest imports this first): it must stay so.
ENV_BEFORE = dict(os.environ)


def processes_mentioning(text: str) -> list[str]:
    """Live (non-zombie) processes whose command line or environment contains ``text``."""
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
        if needle in cmdline or needle in environ:
            shown = cmdline.replace(b"\0", b" ").decode(errors="replace").strip()[:160]
            found.append(f"{pid}: {shown}")
    return found


def wait_until_gone(text: str, seconds: float = 15.0) -> list[str]:
    """Processes still mentioning ``text`` after up to ``seconds`` (processes take a moment to exit)."""
    deadline = time.monotonic() + seconds
    left = processes_mentioning(text)
    while left and time.monotonic() < deadline:
        time.sleep(0.5)
        left = processes_mentioning(text)
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
