"""What RADICAL-Pilot reads from the process environment, set only while it starts and stops.

RADICAL-Pilot takes its directories, profiling switch and advertised interface from
environment variables and finds its helper scripts on ``PATH``. ``patched`` sets them
for the blocking start-up and close-down calls (the processes RADICAL-Pilot spawns
then inherit them) and puts the user's values back afterwards. Two more pieces of
state live outside the environment and are handled here too: radical.utils' id
counter directory (fixed at import time, normally ``~/.radical``) and the launcher
scripts that PSI/J caches in ``~/.psij/work``.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import shutil
import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

_log = logging.getLogger("flowbridge.radical")

#: One start or close at a time: the environment is one per process.
_LOCK = threading.RLock()
#: Run directories of the live backends that own a session; the newest one holds the id counters.
_LIVE_BASES: list[str] = []
_ORIGINAL_BASE: list[str] = []


def import_rp() -> Any:
    """``radical.pilot``, imported without its warning about a logging set up before it.

    radical.utils patches ``logging`` to be fork-safe and warns when the root logger
    already has handlers (pytest's log capture, a user's ``basicConfig``). Called
    on the thread that starts a backend, while the engine's loop waits for it.
    """
    if "radical.pilot" not in sys.modules:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Import `radical` modules before `logging`")
            warnings.simplefilter("ignore", ResourceWarning)  # a version file radical.utils leaves open
            importlib.import_module("radical.pilot")
    return sys.modules["radical.pilot"]


def variables(run_dir: Path, *, local: bool) -> dict[str, str]:
    """The variables RADICAL-Pilot needs, given the user's current environment.

    ``FLOWBRIDGE_OWNER`` tags every process RP execs while it starts (see
    :mod:`flowbridge.toolkit.procs`); ``SPT_NOENV`` keeps that tag readable in
    ``/proc/PID/environ`` after RP's processes retitle themselves with setproctitle.
    """
    from flowbridge.toolkit.procs import OWNER_ENV

    bindir = os.path.dirname(sys.executable)
    path = os.environ.get("PATH", "")
    values = {
        "RADICAL_BASE": str(run_dir),  # else ~/.radical
        "RADICAL_PILOT_BASE": str(run_dir),  # else ./rp.session.<sid>/ in the working directory
        "RADICAL_PROFILE": os.environ.get("RADICAL_PROFILE", "False"),  # profiling halves throughput
        "RADICAL_REPORT": os.environ.get("RADICAL_REPORT", "False"),  # no progress bars on stdout
        "VIRTUAL_ENV": sys.prefix,  # the agent reuses this interpreter's environment
        OWNER_ENV: str(run_dir),
        "SPT_NOENV": "1",
    }
    if bindir not in path.split(os.pathsep):
        values["PATH"] = path + os.pathsep + bindir if path else bindir  # radical-pilot-* scripts
    if local:
        # ZMQ binds every interface; this sets the address it advertises.
        values["RADICAL_DEFAULT_IFACE"] = os.environ.get("RADICAL_DEFAULT_IFACE", "lo")
    return values


@contextlib.contextmanager
def patched(values: dict[str, str], run_dir: Path | None = None, lock_timeout: float = 600.0) -> Iterator[None]:
    """Set ``values`` in ``os.environ`` for the block; restore what the user had after it.

    A variable someone else changed meanwhile is left as they set it. With ``run_dir``,
    radical.utils also counts ids there (imported here first, it would use ``~/.radical``).
    """
    if not _LOCK.acquire(timeout=lock_timeout):
        raise TimeoutError(
            f"another RADICAL-Pilot backend in this process has been starting for over {lock_timeout:.0f} s; "
            f"shut it down first (or raise start_timeout=)"
        )
    try:
        saved = {key: os.environ.get(key) for key in values}
        os.environ.update(values)
        try:
            if run_dir is not None:
                _pin_id_base(run_dir)
            yield
        finally:
            for key, old in saved.items():
                if os.environ.get(key) != values[key]:
                    continue
                if old is None:
                    del os.environ[key]
                else:
                    os.environ[key] = old
    finally:
        _LOCK.release()


def _pin_id_base(run_dir: Path) -> None:
    """Make radical.utils keep its id counters under ``run_dir`` while this backend lives."""
    fresh = "radical.utils.ids" not in sys.modules
    import_rp()
    ids: Any = sys.modules["radical.utils.ids"]

    if not _ORIGINAL_BASE:
        if fresh:  # imported just now, under our RADICAL_BASE: remember where it would have gone
            home = os.environ.get("HOME") or os.getcwd()
            _ORIGINAL_BASE.append(os.path.join(home, ".radical", "utils"))
        else:
            _ORIGINAL_BASE.append(ids._BASE)
    base = str(run_dir / ".radical" / "utils")
    os.makedirs(base, exist_ok=True)
    if base not in _LIVE_BASES:
        _LIVE_BASES.append(base)
    ids._BASE = base


def release_id_base(run_dir: Path) -> None:
    """This backend is gone: hand the id counters to the newest live one, or back to the default."""
    with _LOCK:
        base = str(run_dir / ".radical" / "utils")
        if base not in _LIVE_BASES:
            return
        _LIVE_BASES.remove(base)
        ids: Any = sys.modules.get("radical.utils.ids")
        if ids is not None and getattr(ids, "_BASE", None) == base:
            ids._BASE = _LIVE_BASES[-1] if _LIVE_BASES else _ORIGINAL_BASE[0]


class PsijCache:
    """PSI/J deploys its launcher scripts to ``~/.psij/work/<hash>/``; remove what a run added.

    PSI/J runs inside RADICAL-Pilot's launcher process and reads the directory from
    ``$HOME`` at import, so it cannot be pointed elsewhere without changing ``HOME``
    for the pilot and every task. Instead the entries that did not exist before the
    backend started are removed when it has closed.
    """

    def __init__(self) -> None:
        self.root = Path(os.path.expanduser("~")) / ".psij"
        self.work = self.root / "work"
        self.had_root = self.root.exists()
        self.had_work = self.work.exists()
        self.before = set(os.listdir(self.work)) if self.had_work else set()

    def clean(self) -> None:
        try:
            if self.work.is_dir():
                for name in set(os.listdir(self.work)) - self.before:
                    target = self.work / name
                    if target.is_dir() and not target.is_symlink():
                        shutil.rmtree(target, ignore_errors=True)
                    else:
                        target.unlink(missing_ok=True)
                if not self.had_work:
                    self.work.rmdir()
            if not self.had_root:
                self.root.rmdir()
        except OSError as exc:  # in use by another process, or not ours to remove
            _log.debug("left %s in place: %s", self.root, exc)


def collect_quietly() -> None:
    """Collect RADICAL-Pilot's closed session now, without its ResourceWarnings.

    RP leaves its ZMQ sockets and contexts to the garbage collector ("rely on GC for
    destruction"); pyzmq warns about each one, which breaks a ``-W error`` test run
    wherever the collection happens to fall. Collecting right after close, with that
    one category silenced, keeps the warnings from surfacing in the user's code.
    """
    import gc

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


@contextlib.contextmanager
def logging_kept() -> Iterator[Callable[[], None]]:
    """Put back the logging handlers RADICAL-Pilot removes from your loggers when it closes.

    radical.utils closes a logger by closing and removing every handler up its parent
    chain, the root logger's included: after ``session.close()`` your own logging
    would print nothing. Handlers of the ``radical.*`` loggers stay closed. The block
    gets the function that puts them back, for a close abandoned half-way.
    """
    manager = logging.Logger.manager
    loggers = [logging.getLogger(), *(v for v in list(manager.loggerDict.values()) if isinstance(v, logging.Logger))]
    kept = {lg: list(lg.handlers) for lg in loggers if lg.handlers and not lg.name.startswith(("radical", "rp."))}

    def restore() -> None:
        for lg, handlers in kept.items():
            for handler in handlers:
                if handler not in lg.handlers:
                    lg.addHandler(handler)

    try:
        yield restore
    finally:
        restore()
