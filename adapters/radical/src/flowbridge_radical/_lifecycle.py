"""Session and pilot lifecycle: what a backend makes of RADICAL-Pilot's, on its start thread, and its end.

Start runs on a daemon thread with SIGINT blocked (RP's threads and processes inherit
the mask: a terminal's Ctrl-C reaches the driver only). What it makes for flowbridge
goes on a :class:`~flowbridge.toolkit.owned.Owned` as it is made: the run directory,
the owner tag with its reaper, PSI/J's launcher scripts, radical.utils' id counters,
the proxy workers' exit hook. Then RP's own objects, as far as the backend was asked
to make them: session, managers, pilot, RAPTOR master.

Close undoes them in RP's order: cancel the backend's tasks, cancel the pilot it made,
close the session it made (or the managers it made on yours); 5-9 s, so the caller
bounds it and :meth:`Lifecycle.force` kills what overran. Then one release of the Owned
stack. An RP call cut short by ``force`` goes on on its own thread and may write into
the run directory after that release: when it returns, that thread runs the idempotent
file steps again (``Owned`` releases once).
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from flowbridge import ConfigError, FlowbridgeError, WorkerLost
from flowbridge.toolkit import procs
from flowbridge.toolkit.blocking import off_loop
from flowbridge.toolkit.owned import Owned

from . import _environ, _pilot, _stop
from ._bridge import FINAL, TaskBridge

if TYPE_CHECKING:
    import radical.pilot as rp

_log = logging.getLogger("flowbridge.radical")
T = TypeVar("T")
#: Seconds to wait for the pilot at shutdown.
_PILOT_WAIT = 10.0
#: shutdown(cancel=True): seconds RP gets to close cleanly before flowbridge kills what it started
#: (a clean close takes 5-6 s on an idle 2-core machine; the engine allows ~8 s in all).
GRACE = 4.5
#: Seconds for the last sweep of what RP left behind after it closed (one /proc scan, then the kills).
_SWEEP_WAIT = 3.0


class _Stopped(FlowbridgeError):
    """The backend was shut down while it was starting."""


class Lifecycle:
    """The RP objects one backend uses (the user's or its own) and what it made: brought up, closed, released."""

    def __init__(
        self,
        bridge: TaskBridge,
        *,
        pd: dict[str, Any],
        overrides: dict[str, int],
        resource: str,
        session: rp.Session | None,
        pilot: rp.Pilot | None,
        task_manager: rp.TaskManager | None,
        run_dir: Path | None,
        keep_run_dir: bool,
        start_timeout: float,
    ) -> None:
        self.bridge = bridge
        self.raptor = bridge.raptor
        self.local = bridge.local
        self.resource = resource
        self.session = session
        self.pilot = pilot
        self.task_manager = task_manager
        self.own_session = session is None and pilot is None
        self.own_pilot = pilot is None
        self.run_dir: Path | None = None
        self._pd, self._overrides = pd, overrides
        self._run_dir_given = run_dir
        self._start_timeout = start_timeout
        self._own = Owned("radical", keep_run_dir=keep_run_dir)
        self._again: list[Callable[[], object]] = []  # the idempotent file steps, for a call that outlived release
        self._reaper: procs.Reaper | None = None
        self._pmgr: rp.PilotManager | None = None  # the managers this backend made (closed by it)
        self._tmgr: rp.TaskManager | None = None
        self._proxy_workers: list[Any] = []  # RP's ZMQ proxy worker of an owned session (a fork of this process)
        self.killed = False  # force() ran: the start stops at its next step, the close skips what is left
        self._torn_down = False
        self._restore_logging: Callable[[], None] | None = None

    # -- start (the start thread) ---------------------------------------------------------------

    def claim(self) -> str | None:
        """The run directory, when this backend makes anything of RP's; its path is the owner tag."""
        if not (self.own_session or self.own_pilot or self.raptor.start or self.task_manager is None):
            return None
        path = self._owning(self._own.run_dir, self._run_dir_given)  # a given one is adopted: removed unless kept
        if not self._own.keep_run_dir:
            self._again.append(functools.partial(shutil.rmtree, path, ignore_errors=True))
        self.run_dir = path
        return str(path)

    def bring_up(self) -> None:
        """After :meth:`claim`: RP's session, managers, pilot and RAPTOR as asked, attached to the bridge."""
        try:
            if self.run_dir is None:  # all the user's: nothing to make
                self._attach()
                return
            run_dir = self.run_dir
            env = _environ.variables(run_dir, local=self.local)
            if self.own_session:
                self._on_release(_environ.PsijCache().clean)
                if self._overrides:
                    config = _pilot.write_resource_config(run_dir, self.resource, self._overrides)
                    env["RADICAL_CONFIG_USER_DIR"] = str(config)
            if self.own_session or self.own_pilot:
                # What RP starts for us carries the run dir as owner tag: killed at release, and by a reaper
                # (which removes the run dir too) when this process dies without shutting down: kill -9, a
                # second Ctrl-C, a kernel restart.
                self._reaper = self._owning(self._own.tag, str(run_dir), reaper=self.local)
            if self.own_session:
                self._on_release(_environ.release_id_base, run_dir)  # pinned under run_dir by patched()
                self._on_release(_stop.closed, run_dir)
            _stop.install_fork_hook()
            with (
                _stop.sigint_blocked(),
                _environ.patched(env, run_dir if self.own_session else None, lock_timeout=self._start_timeout),
            ):
                self._make(run_dir)
        except BaseException:
            if self.killed:  # shutdown killed it meanwhile: kill what came up since
                self.kill()
                self._release_again()
            else:
                self._bounded_tear_down(GRACE * 2)
            raise

    def _make(self, run_dir: Path) -> None:
        rp = _environ.import_rp()

        if self.own_session:
            self.session = rp.Session()
            _log.info("RADICAL-Pilot session %s in %s", self.session.uid, run_dir)
            self._proxy_workers = _stop.proxy_workers(self.session)
            _stop.make_daemonic(self._proxy_workers)
            _stop.kill_workers_at_exit(run_dir, self._proxy_workers)
        self._check_killed()
        session = self.session
        if self.own_pilot:
            assert session is not None  # made above, or the user's (session=)
            try:
                rcfg = session.get_resource_config(self.resource)
            except Exception as exc:
                raise ConfigError(f"RadicalExecutionBackend: resource {self.resource!r}: {exc}") from None
            pd = dict(self._pd, sandbox=str(run_dir / "sandbox"))
            pmgr = self._pmgr = rp.PilotManager(session=session)
            tmgr = self.task_manager = self._tmgr = rp.TaskManager(session=session)
            self._check_killed()
            self.pilot = pmgr.submit_pilots(rp.PilotDescription(pd))
            tmgr.add_pilots(self.pilot)
            self.raptor.fit(rcfg, pd)
        elif self.task_manager is None:
            self.task_manager = getattr(self.pilot, "_tmgr", None)
            if self.task_manager is None:  # a pilot with no TaskManager yet: give it one (the session closes it)
                self.task_manager = rp.TaskManager(session=session)
                self.task_manager.add_pilots(self.pilot)  # stays attached: left for the session to close
        tmgr, pilot = self._attach()
        self._check_killed()
        if self.raptor.start:
            self.raptor.launch(rp, tmgr, pilot, self.bridge.token)
        if self.own_pilot:
            self._wait_for_pilot(rp, pilot)

    def _attach(self) -> tuple[rp.TaskManager, rp.Pilot]:
        if self.task_manager is None:
            self.task_manager = getattr(self.pilot, "_tmgr", None)
        if self.task_manager is None:
            raise ConfigError("RadicalExecutionBackend: the pilot has no TaskManager; pass task_manager=")
        assert self.pilot is not None  # the user's, or made by now
        self.bridge.attach(self.task_manager, self.pilot)
        return self.task_manager, self.pilot

    def _wait_for_pilot(self, rp: Any, pilot: rp.Pilot) -> None:
        """A local pilot is waited for until it runs; a batch pilot until its job is submitted."""
        states = [rp.PMGR_ACTIVE] if self.local else [rp.PMGR_ACTIVE_PENDING, rp.PMGR_ACTIVE]
        pilot.wait(state=states + list(rp.FINAL), timeout=self._start_timeout)
        self._check_killed()
        state = pilot.state
        if state in FINAL:
            sandbox = self.bridge.pilot_sandbox()
            said = _stop.pilot_error(sandbox)
            raise WorkerLost(
                f"the RADICAL-Pilot pilot {pilot.uid} on {self.resource} ended while starting ({state})"
                + (f"; the agent said:\n{said}\n" if said else "; ")
                + f"see {sandbox or pilot.pilot_sandbox} (keep_run_dir=True keeps it)"
            )
        if state not in states:
            raise FlowbridgeError(
                f"the RADICAL-Pilot pilot {pilot.uid} on {self.resource} did not start within "
                f"{self._start_timeout} s (state {state})"
            )

    def _check_killed(self) -> None:
        if self.killed:
            raise _Stopped("the RADICAL-Pilot backend was shut down while it was starting")

    def _owning(self, make: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """An Owned step, or _Stopped when shutdown released the stack meanwhile."""
        self._check_killed()
        try:
            return make(*args, **kwargs)
        except RuntimeError:
            if self._own.released:
                self._check_killed()
            raise

    def _on_release(self, fn: Callable[..., object], *args: Any) -> None:
        """``fn(*args)`` at release, and again after a call that outlived it (so: idempotent steps only)."""
        self._again.append(functools.partial(fn, *args))
        self._owning(self._own.callback, fn, *args)

    # -- close ----------------------------------------------------------------------------------

    async def close(self, *, hurry: bool) -> None:
        """Close what this backend made, sweep what RP left, release what start made.

        ``hurry``: RP gets GRACE s to close cleanly, then everything this backend started is killed.
        """
        if not hurry:
            await off_loop(self._tear_down, name="flowbridge-radical-close")
        else:
            try:
                await off_loop(self._tear_down, False, True, timeout=GRACE, name="flowbridge-radical-close")
            except TimeoutError:
                _log.info(
                    "RADICAL-Pilot did not close within %.1f s; killing the processes this backend started", GRACE
                )
                self.force()
        if not self.killed:
            try:
                await off_loop(self.force, True, timeout=_SWEEP_WAIT, name="flowbridge-radical-sweep")
            except TimeoutError:
                _log.debug("the sweep after RADICAL-Pilot's close took over %.1f s", _SWEEP_WAIT)
        await off_loop(self.release, name="flowbridge-radical-release")

    def kill(self) -> None:
        """Last resort, quick: kill what this backend started, release what start made."""
        self.force()
        self.release()

    def release(self) -> None:
        """Undo what start made, last made first (once); put back logging that a killed close stripped."""
        self._own.release()
        if self.killed and self._restore_logging is not None:
            self._restore_logging()  # a close cut short may have stripped them already

    def _release_again(self) -> None:
        """On a thread whose RP call outlived the release: remove again what that call may have written."""
        for step in reversed(self._again):
            step()

    def let_go(self) -> None:
        """A closed backend holds no RP object, so what it closed can be collected now."""
        self.bridge.let_go()
        self.session = self.pilot = self.task_manager = self._pmgr = self._tmgr = None

    def force(self, sweep: bool = False) -> None:
        """SIGKILL what this backend started: RP's processes (by run dir), its tasks (by tag), the proxy worker.

        ``sweep``: after RP closed by itself, kill only what it left behind (a pilot cancelled
        in a hurry leaves its RAPTOR master and workers running); RP is not counted as killed.
        """
        if not sweep:
            self.killed = True
        texts = self.bridge.task_texts()
        under = None
        if self.run_dir is not None and (self.own_session or self.own_pilot):
            # The exact tag, or a path under the run dir (never a sibling run dir whose name starts alike).
            under = str(self.run_dir)
            texts += [f"{procs.OWNER_ENV}={under}\0", os.path.join(under, "")]
        reaper = self._reaper
        spare = [reaper.proc.pid] if reaper is not None and reaper.proc.poll() is None else []
        killed = _stop.kill_by_text(texts, spare=spare, under=under)
        if self.own_session and self.run_dir is not None:
            _stop.kill_workers(self._proxy_workers)
        if killed:
            _log.info(
                "killed %d process(es) %s", len(killed), "RADICAL-Pilot left behind" if sweep else "of the backend"
            )

    def _bounded_tear_down(self, limit: float) -> None:
        """A failed start: close what came up, killing it if RP does not close within ``limit`` s."""
        worker = threading.Thread(target=self._tear_down, args=(True,), name="flowbridge-radical-close", daemon=True)
        worker.start()
        worker.join(limit)
        if worker.is_alive():
            _log.info("RADICAL-Pilot did not close within %.1f s after a failed start; killing it", limit)
            self.force()
        self.release()

    def _tear_down(self, quick: bool = False, hurry: bool = False) -> None:
        """Cancel this backend's tasks, then close what it created (5-9 s for an owned session)."""
        if self._torn_down:
            return
        self._torn_down = True
        self.bridge.stop_submitting(wait=1.0 if hurry else None)
        t0 = time.monotonic()
        try:
            with _environ.logging_kept() as restore:  # RP's close removes the root logger's handlers
                self._restore_logging = restore
                self._close_rp(quick, hurry)
            _log.debug("RADICAL-Pilot closed after %.1f s", time.monotonic() - t0)
        except Exception:
            if not self.killed:
                _log.warning("RADICAL-Pilot did not close cleanly", exc_info=True)
        finally:
            self.bridge.closing = True
            if self.killed:
                self._release_again()

    def _close_rp(self, quick: bool, hurry: bool) -> None:
        t0 = time.monotonic()
        if not quick:
            self.bridge.cancel_all(wait=not hurry)
            _log.debug("tasks cancelled after %.1f s", time.monotonic() - t0)
        if self.killed:
            return
        if self.own_pilot and self.pilot is not None:
            self.pilot.cancel()
            self.pilot.wait(state=list(FINAL), timeout=_PILOT_WAIT)
            _log.debug("pilot %s ended after %.1f s", self.pilot.uid, time.monotonic() - t0)
        if self.killed:
            return
        if self.own_session and self.session is not None:
            self.session.close(terminate=True, download=False)
            return
        self.bridge.detach()
        if self._tmgr is not None:
            self._tmgr.close()
        if self._pmgr is not None:
            self._pmgr.close(terminate=True)
