"""What an adapter's ``start()`` created, released in reverse order by one ``release()``.

Every adapter that starts processes makes the same three things: a run directory,
an owner tag on those processes, and a :class:`~flowbridge.toolkit.procs.Reaper`
that kills them if the driver dies. :class:`Owned` records each as it is made, on
an exit stack, so shutdown is the mirror of start by construction: what was made
last is released first, what was never made is never touched, and what the user
brought is never on the stack at all::

    self._own = Owned("dask", keep_run_dir=keep)
    run_dir = self._own.run_dir()        # made now; removed last
    self._own.tag(str(run_dir))          # reaper now; at release: kill by tag, stop reaper
    self._own.callback(cluster.close)    # released first
    ...
    self._own.release()                  # once; later calls do nothing

A step that raises is logged and the others still run.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from . import procs

__all__ = ["Owned"]

_log = logging.getLogger("flowbridge.toolkit")


class Owned:
    """The exit stack of one adapter's start: run dir, owner tag and reaper, and whatever else it made."""

    def __init__(self, kind: str, *, keep_run_dir: bool = False) -> None:
        self.kind = kind
        self.keep_run_dir = keep_run_dir
        self.path: Path | None = None  # the run directory, once made
        self.owner: str | None = None  # the owner tag, once set
        self.released = False
        self._stack = contextlib.ExitStack()
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<Owned {self.kind} {self.path or '(no run dir)'}{' released' if self.released else ''}>"

    def run_dir(self, path: Path | None = None) -> Path:
        """Make the run directory (see :func:`flowbridge.adapter.make_run_dir`), or adopt ``path``
        (made if missing); release removes it unless ``keep_run_dir``."""
        from ..adapter import make_run_dir

        self._check_open()
        if path is None:
            path = make_run_dir(self.kind)
        else:
            path.mkdir(parents=True, exist_ok=True)
        self.path = path
        if self.keep_run_dir:
            self._stack.callback(_log.info, "%s run directory kept: %s", self.kind, path)
        else:
            self._stack.callback(shutil.rmtree, path, ignore_errors=True)  # never raises
        return path

    def tag(self, owner: str, *, reaper: bool = True) -> procs.Reaper | None:
        """Own the processes tagged ``owner``: a reaper guards them now (it removes the run dir too,
        unless kept); release kills what still carries the tag, then stops the reaper."""
        self._check_open()
        self.owner = owner
        guard = None
        if reaper:
            guard = procs.Reaper(owner, None if self.keep_run_dir else self.path)
            self._stack.callback(_step, guard.stop, (), {})
        self._stack.callback(_step, self._reap, (owner,), {})
        return guard

    def callback(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
        """Run ``fn(*args, **kwargs)`` at release, before everything registered earlier."""
        self._check_open()
        self._stack.callback(_step, fn, args, kwargs)

    def release(self) -> None:
        """Undo everything, last made first; once (later calls return at once)."""
        with self._lock:  # a kill() from another thread while shutdown releases: one of them does it
            if self.released:
                return
            self.released = True
        self._stack.close()

    def _check_open(self) -> None:
        if self.released:
            raise RuntimeError(f"the {self.kind} adapter was shut down; make a new one")

    @staticmethod
    def _reap(owner: str) -> None:
        left = procs.reap({procs.OWNER_ENV: owner}, wait=1.0)
        if left:
            _log.info("killed %d leftover process(es) of %s", len(left), owner)


def _step(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    try:
        fn(*args, **kwargs)
    except Exception:
        _log.warning("releasing %s failed", getattr(fn, "__qualname__", fn), exc_info=True)
