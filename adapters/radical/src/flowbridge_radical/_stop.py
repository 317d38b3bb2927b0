"""Stopping RADICAL-Pilot for sure: keep Ctrl-C away from it, find every process it started, kill them.

RADICAL-Pilot starts ~30 processes on a local pilot: its bridges and components
(``radical-pilot-bridge``/``-component``, which retitle themselves ``rp.*``), the
ZMQ proxy worker (a ``multiprocessing`` fork of the driver), the agent with its own
components, RAPTOR master and workers, and the tasks. All but the tasks share the
driver's process group, so a terminal's Ctrl-C (SIGINT to the whole group) or a
Jupyter interrupt reaches them: they die half-way and the client's next call
(``Pilot.cancel`` -> ``PilotManager.wait_pilots``) waits forever for an answer.

- :func:`sigint_blocked`: the thread that brings RP up blocks SIGINT, so every
  thread and process RP starts from it inherits the blocked signal. The driver's
  main thread still gets its KeyboardInterrupt.
- Every exec'd RP process inherits ``FLOWBRIDGE_OWNER=<run dir>`` and
  ``SPT_NOENV=1`` (so ``setproctitle`` leaves ``/proc/PID/environ`` readable);
  ``RADICAL_BASE`` and the sandboxes point into the run dir too: :func:`kill_by_text`
  finds them all by the run dir.
- The proxy worker is a fork, whose ``/proc`` environment is the driver's: it is
  marked daemonic (``multiprocessing`` would otherwise join it forever at exit)
  and gets ``PR_SET_PDEATHSIG`` (it dies with the driver, even after ``kill -9``).
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import re
import signal
import threading
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from flowbridge.toolkit import procs

_log = logging.getLogger("flowbridge.radical")

_PR_SET_PDEATHSIG = 1
_fork_hook: list[Any] = []  # [prctl] once the hook is installed
_arming = threading.local()
_ARMED = [0]  # > 0 while a backend starts RP: forks of RP's proxy thread get a parent-death signal


@contextlib.contextmanager
def sigint_blocked() -> Iterator[None]:
    """Block SIGINT on this (non-main) thread for the block; RP threads and processes started here inherit it."""
    if threading.current_thread() is threading.main_thread():
        yield  # never change the main thread's signals behind the user's back
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    _ARMED[0] += 1
    try:
        yield
    finally:
        _ARMED[0] -= 1
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def install_fork_hook() -> None:
    """Once per process: a fork made by RP's proxy service while a backend starts dies with its parent."""
    if _fork_hook:
        return
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        prctl = None
    _fork_hook.append(prctl)
    if prctl is not None and hasattr(os, "register_at_fork"):
        os.register_at_fork(after_in_child=_after_fork)


def _after_fork() -> None:
    if _ARMED[0] <= 0:
        return
    target = getattr(threading.current_thread(), "_target", None)
    owner = getattr(target, "__self__", None)
    if owner is None or not type(owner).__module__.startswith("radical."):
        return  # not one of RP's threads: leave the user's forks alone
    prctl = _fork_hook[0]
    if prctl is not None:
        prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)


def proxy_workers(session: Any) -> list[Any]:
    """The ZMQ proxy workers (``multiprocessing`` children of this process) of a session this process runs.

    RP's proxy service (``session._proxy``, a thread of the session that created it) forks one
    worker per client session and keeps it in ``_clients[sid]["proc"]``. (``Process.start()``
    drops the target and arguments, so nothing else tells these children apart.)
    """
    clients = getattr(getattr(session, "_proxy", None), "_clients", None)
    if not isinstance(clients, dict):
        return []
    return [c["proc"] for c in list(clients.values()) if isinstance(c, dict) and c.get("proc") is not None]


def make_daemonic(workers: Iterable[Any]) -> None:
    """``multiprocessing`` joins non-daemonic children at exit without limit: terminate these instead."""
    for child in workers:
        config = getattr(child, "_config", None)
        if isinstance(config, dict):
            config["daemon"] = True


_open_workers: dict[str, list[Any]] = {}  # run dir -> proxy workers of a backend not closed yet
_exit_hook_pid = [0]


def kill_workers_at_exit(run_dir: str | os.PathLike[str], workers: list[Any]) -> None:
    """At interpreter exit, SIGKILL these proxy workers if their backend is still open then.

    ``multiprocessing``'s own exit hook SIGTERMs daemonic children and joins them: RP's
    proxy worker takes seconds to go, so a second Ctrl-C would not end the program at once.
    This hook is registered after multiprocessing's (RP imported it first), so it runs before.
    """
    _open_workers[os.fspath(run_dir)] = list(workers)
    if _exit_hook_pid[0] != os.getpid():
        _exit_hook_pid[0] = os.getpid()
        atexit.register(_kill_open_workers)


def closed(run_dir: str | os.PathLike[str]) -> None:
    _open_workers.pop(os.fspath(run_dir), None)


def _kill_open_workers() -> None:
    if _exit_hook_pid[0] != os.getpid():  # a forked child inherits the hook, not the backends
        return
    for workers in list(_open_workers.values()):
        kill_workers(workers)


def kill_workers(workers: Iterable[Any]) -> None:
    for child in workers:
        with contextlib.suppress(Exception):
            child.kill()
            child.join(0.5)


def kill_by_text(
    texts: Iterable[str], *, spare: Iterable[int] = (), wait: float = 2.0, under: str | None = None
) -> list[int]:
    """SIGKILL every process (not this one, not ``spare``) whose command line or environment holds a text,
    or (with ``under``) whose working directory lies under that directory."""
    spared = set(spare)
    killed: list[int] = []
    texts = [t for t in texts if t]
    for _ in range(3):  # a process may fork while it is being killed
        pids = {p for text in texts for p in procs.find(text=text)}
        if under is not None:
            pids.update(_working_under(under))
        pids -= spared | {os.getpid()}
        if not pids:
            break
        procs.kill(pids)
        killed.extend(p for p in pids if p not in killed)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and any(procs.alive(p) for p in killed):
        time.sleep(0.02)
    return killed


def _working_under(root: str) -> list[int]:
    root = os.path.join(root, "")
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        if os.path.join(cwd, "").startswith(root) and procs.alive(int(entry)):
            found.append(int(entry))
    return found


# -- what a failed pilot said --------------------------------------------------------------------

_ERROR_WORDS = ("error", "exception", "traceback", "failed", "cannot", "no such", "not found", "killed")
_NOISE = ("dig: command not found", "ping: command not found", "gtod.sh", "tar: ", "has no attribute 'version'")


def pilot_error(sandbox: str | os.PathLike[str] | None, limit: int = 1500) -> str:
    """The agent's own words on why a pilot failed, read from its sandbox: stderr files first, then
    the error lines of its logs (words in paths do not count), at most ``limit`` characters."""
    if not sandbox:
        return ""
    root = Path(sandbox)
    if not root.is_dir():
        return ""
    names = sorted(p.name for p in root.iterdir() if p.is_file())

    def lines_of(name: str, count: int, errors_only: bool) -> list[str]:
        out = []
        for line in _tail(root / name, count).splitlines():
            line = line.strip()
            words = re.sub(r"\S*/\S*", " ", line).lower()  # not the paths: a run dir may say "failed"
            if not line or any(n in line for n in _NOISE):
                continue
            if errors_only and not any(w in words for w in _ERROR_WORDS):
                continue
            out.append(f"{name}: {line}")
        return out

    said: list[str] = []
    for name in dict.fromkeys(["bootstrap_0.err", "agent_0.err", *(n for n in names if n.endswith(".err"))]):
        if (root / name).is_file():
            said += [line for line in lines_of(name, 10, False) if line not in said]
    logged: list[str] = []
    for name in dict.fromkeys(["bootstrap_0.out", "agent_0.log", *(n for n in names if n.endswith(".log"))]):
        if (root / name).is_file():
            logged += [line for line in lines_of(name, 200, True) if line not in logged and line not in said]
    text = "\n".join(said[-15:])[-limit:]
    for line in logged[-10:]:
        if len(text) + len(line) + 1 > limit:
            break
        text = f"{text}\n{line}" if text else line
    return text


def _tail(path: Path, count: int) -> str:
    try:
        with path.open("rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 64 * 1024))
            data = fh.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-count:])
