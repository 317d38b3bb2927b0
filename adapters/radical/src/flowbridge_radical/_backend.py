"""RadicalExecutionBackend: flowbridge tasks on a RADICAL-Pilot pilot.

The asyncio bridge: ``submit`` (on the engine's loop) registers an asyncio future
under a client-side task uid and queues the description; one thread hands queued
descriptions to RP in batches and forwards cancellations. RP reports task states
on its own thread (one TaskManager callback); on a final state the outcome is read
there and handed to the loop with ``call_soon_threadsafe``. A pilot that dies fires
no task callbacks, so a pilot callback fails every pending task with WorkerLost.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import queue
import shutil
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowbridge import ConfigError, FlowbridgeError, UnsupportedResource, WorkerLost
from flowbridge.adapter import Adapter, TaskSpec, make_run_dir
from flowbridge.toolkit import procs
from flowbridge.toolkit.blocking import off_loop

from . import _environ, _pilot, _remote, _stop, _tasks

if TYPE_CHECKING:
    import radical.pilot as rp

_log = logging.getLogger("flowbridge.radical")
_FINAL = ("DONE", "FAILED", "CANCELED")
_BACKENDS = itertools.count(1)
#: Seconds to wait for cancelled tasks, then for the pilot, at shutdown.
_CANCEL_WAIT = 5.0
_PILOT_WAIT = 10.0
#: shutdown(cancel=True): seconds RP gets to close cleanly before flowbridge kills what it started
#: (a clean close takes 5-6 s on an idle 2-core machine; the engine allows ~8 s in all).
_GRACE = 4.5
#: Seconds for the last sweep of what RP left behind after it closed (one /proc scan, then the kills).
_SWEEP_WAIT = 3.0


class _Stopped(FlowbridgeError):
    """The backend was shut down while it was starting."""


class _Worker:
    """One daemon thread running RP calls in order (a ThreadPoolExecutor's thread is joined at exit)."""

    def __init__(self, name: str) -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._open = True
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        if not self._open:
            raise RuntimeError("closed")
        self._queue.put((fn, args))

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            fn, args = item
            try:
                fn(*args)
            except Exception:
                _log.exception("RADICAL-Pilot call %s failed", getattr(fn, "__name__", fn))

    def shutdown(self, wait: float | None = None) -> bool:
        """Stop taking calls; wait up to ``wait`` s (None: no limit) for the queued ones; True when done."""
        if self._open:
            self._open = False
            self._queue.put(None)
        if threading.current_thread() is self._thread:
            return False
        self._thread.join(wait)
        return not self._thread.is_alive()


class _Entry:
    """One submitted attempt: its future on the engine's loop and what RP needs to run it."""

    __slots__ = ("cancelled", "command", "fields", "final", "future", "kind", "label", "task", "uid", "walltime")

    def __init__(
        self, uid: str, kind: str, future: asyncio.Future[Any], fields: dict[str, Any], spec: TaskSpec
    ) -> None:
        self.fields: dict[str, Any] | None
        self.uid = uid
        self.kind = kind
        self.future = future
        self.fields = fields
        self.label = f"{spec.uid} ({spec.name})"
        self.command = spec.command
        self.walltime = fields.get("timeout")
        self.task: Any = None  # the rp.Task, once submitted
        self.final = False
        self.cancelled = False


class RadicalExecutionBackend(Adapter):
    """Runs flowbridge tasks on a RADICAL-Pilot pilot: executables as tasks, functions on RAPTOR.

    ``RadicalExecutionBackend({'resource': 'local.localhost'})`` (the seeds' form)
    creates a session, a pilot and a RAPTOR master with ``raptor_workers`` workers,
    and closes them all at shutdown. The dict takes ``resource``, ``queue``,
    ``project``, ``nodes``, ``cores_per_node``, ``gpus_per_node``, ``walltime``
    (minutes), and ``cores``, ``gpus``, ``memory``, ``access_schema``, ``job_name``.

    ``RadicalExecutionBackend(session=s, pilot=p)`` uses a pilot you run (and its
    TaskManager, or ``task_manager=``); ``raptor=master`` a RAPTOR master you started
    (``raptor=False``: no function tasks). What you bring stays up at shutdown;
    only the tasks this backend submitted are cancelled. ``session=s`` alone submits
    a new pilot from the dict to your session and cancels that pilot at shutdown.

    Sandboxes, the session directory and RP's state go to ``run_dir`` (default: a
    fresh :func:`flowbridge.adapter.make_run_dir`), removed at shutdown unless
    ``keep_run_dir``.
    """

    name = "radical"
    capabilities = frozenset(
        {
            "functions",
            "executables",
            "cancel_running",
            "worker_lost",
        }
    )
    supported_resources = frozenset({"cores", "gpus", "ranks", "memory", "walltime", "extra"})

    def __init__(
        self,
        resources: Mapping[str, Any] | None = None,
        *,
        session: rp.Session | None = None,
        pilot: rp.Pilot | None = None,
        task_manager: rp.TaskManager | None = None,
        raptor: Any = None,
        raptor_workers: int = 1,
        worker_cores: int | None = None,
        worker_gpus: int = 0,
        run_dir: str | os.PathLike[str] | None = None,
        keep_run_dir: bool = False,
        start_timeout: float = 300.0,
        name: str | None = None,
    ) -> None:
        self._named(name)
        if resources is not None and not isinstance(resources, Mapping):
            raise TypeError(
                f"RadicalExecutionBackend takes a dict such as {{'resource': 'local.localhost'}}, "
                f"not {type(resources).__name__}"
            )
        if pilot is not None:
            if resources is not None:
                raise ConfigError(
                    "RadicalExecutionBackend: resources describe a pilot to submit; with pilot= omit them"
                )
            if session is not None and getattr(pilot, "session", session) is not session:
                raise ConfigError("RadicalExecutionBackend: pilot= belongs to another session than session=")
        elif task_manager is not None:
            raise ConfigError("RadicalExecutionBackend: task_manager= goes with the pilot= it manages")
        for label, count, least in (("raptor_workers", raptor_workers, 1), ("worker_gpus", worker_gpus, 0)):
            if isinstance(count, bool) or not isinstance(count, int) or count < least:
                raise ConfigError(f"RadicalExecutionBackend: {label} must be an int >= {least}, not {count!r}")
        if worker_cores is not None and (
            isinstance(worker_cores, bool) or not isinstance(worker_cores, int) or worker_cores < 1
        ):
            raise ConfigError(f"RadicalExecutionBackend: worker_cores must be an int >= 1, not {worker_cores!r}")
        if raptor is not None and raptor is not False and not hasattr(raptor, "uid"):
            raise ConfigError("RadicalExecutionBackend: raptor= takes a RAPTOR master task, None (start one) or False")
        self._pd, self._overrides = _pilot.describe(resources, Path("/"))  # validates the dict now
        self._resource = self._pd["resource"] if pilot is None else str(getattr(pilot, "resource", ""))
        self._local = _pilot.is_local(self._resource) if self._resource else False
        self.session = pilot.session if pilot is not None else session
        self.pilot = pilot
        self.task_manager = task_manager
        self.raptor: Any = raptor if raptor is not False else None
        self._want_raptor = raptor is None
        self._raptor_workers = raptor_workers
        self.worker_cores = worker_cores or 1
        self._worker_cores_given = worker_cores is not None
        self._worker_gpus = worker_gpus
        self._run_dir_given = Path(run_dir) if run_dir is not None else None
        self.run_dir: Path | None = None
        self._keep = keep_run_dir
        self._start_timeout = start_timeout
        self._own_session = session is None and pilot is None
        self._own_pilot = pilot is None
        self._own_raptor = False
        self._pmgr: Any = None  # a PilotManager this backend created
        self._own_tmgr = False
        self._torn_down = False
        self._start_future: asyncio.Future[None] | None = None
        self._token = f"fb{os.getpid()}.{next(_BACKENDS)}"
        self._seq = itertools.count(1)
        self._raptor_uids: set[str] = set()
        self._live: dict[str, _Entry] = {}
        self._lock = threading.Lock()
        self._outbox: list[_Entry] = []
        self._flushing = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pool: _Worker | None = None
        self._reaper: procs.Reaper | None = None
        self._proxy_workers: list[Any] = []  # RP's ZMQ proxy worker of an owned session (a fork of this process)
        self._abort = False  # shut down while starting: the start thread stops at its next step
        self._killed = False
        self._restore_logging: Callable[[], None] | None = None
        self._broken: BaseException | None = None
        self._no_raptor: BaseException | None = None
        self._closing = False
        self._closed: asyncio.Future[None] | None = None
        self._psij: _environ.PsijCache | None = None
        self._pilot_sandbox: str | None = None
        # RP keys callbacks by id(): keep one bound method of each for (un)registering.
        self._task_cb = self._on_task_state
        self._pilot_cb = self._on_pilot_state

    def __repr__(self) -> str:
        where = getattr(self.pilot, "uid", None) or self._resource
        return f"<RadicalExecutionBackend {where}{'' if self._own_pilot else ' (yours)'}>"

    # -- start ----------------------------------------------------------------------------------

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._pool = _Worker("flowbridge-radical")
        # Shielded: a cancelled start leaves RP coming up, and shutdown closes (or kills) it. On a daemon
        # thread of its own (off_loop): a start stuck in RP never holds up the program's exit.
        self._start_future = asyncio.ensure_future(off_loop(self._start_blocking, name="flowbridge-radical-start"))
        await asyncio.shield(self._start_future)

    def _start_blocking(self) -> None:
        creates = self._own_session or self._own_pilot or self._want_raptor or self.task_manager is None
        if creates:  # sandboxes, and RADICAL state of the processes RP spawns for us
            self.run_dir = self._run_dir_given or make_run_dir("radical")
            self.run_dir.mkdir(parents=True, exist_ok=True)
            self.owner_tag = str(self.run_dir)
        try:
            if not creates:
                self._attach()
                return
            assert self.run_dir is not None
            env = _environ.variables(self.run_dir, local=self._local)
            if self._own_session:
                self._psij = _environ.PsijCache()
                if self._overrides:
                    assert self.run_dir is not None
                    config = _pilot.write_resource_config(self.run_dir, self._resource, self._overrides)
                    env["RADICAL_CONFIG_USER_DIR"] = str(config)
            if self._local and (self._own_session or self._own_pilot):
                # Kills what this backend started (tagged with the run dir) and removes the run dir when
                # this process dies without shutting down: kill -9, a second Ctrl-C, a kernel restart.
                self._reaper = procs.Reaper(str(self.run_dir), self.run_dir if not self._keep else None)
            _stop.install_fork_hook()
            # SIGINT blocked on this thread: RP's threads and processes inherit it, so the terminal's
            # Ctrl-C (or a Jupyter interrupt) reaches the driver only, never RP half-way.
            with (
                _stop.sigint_blocked(),
                _environ.patched(env, self.run_dir if self._own_session else None, lock_timeout=self._start_timeout),
            ):
                self._bring_up()
        except BaseException:
            if self._abort:  # shutdown killed it meanwhile: kill what came up since
                self._force()
                self._finish()
            else:
                self._bounded_tear_down(_GRACE * 2)
            raise

    def _check_abort(self) -> None:
        if self._abort:
            raise _Stopped("the RADICAL-Pilot backend was shut down while it was starting")

    def _bring_up(self) -> None:
        rp = _environ.import_rp()

        if self._own_session:
            self.session = rp.Session()
            _log.info("RADICAL-Pilot session %s in %s", self.session.uid, self.run_dir)
            assert self.run_dir is not None
            self._proxy_workers = _stop.proxy_workers(self.session)
            _stop.make_daemonic(self._proxy_workers)
            _stop.kill_workers_at_exit(self.run_dir, self._proxy_workers)
        self._check_abort()
        session = self.session
        if self._own_pilot:
            assert self.run_dir is not None
            try:
                rcfg = session.get_resource_config(self._resource)
            except Exception as exc:
                raise ConfigError(f"RadicalExecutionBackend: resource {self._resource!r}: {exc}") from None
            pd = dict(self._pd, sandbox=str(self.run_dir / "sandbox"))
            self._pmgr = rp.PilotManager(session=session)
            self.task_manager = rp.TaskManager(session=session)
            self._own_tmgr = True
            self._check_abort()
            self.pilot = self._pmgr.submit_pilots(rp.PilotDescription(pd))
            self.task_manager.add_pilots(self.pilot)
            if not self._worker_cores_given:
                per_node = int(rcfg.get("cores_per_node") or 0) or 1
                cores = int(pd.get("cores") or 0) or per_node * int(pd.get("nodes") or 1)
                self.worker_cores = max(1, (min(cores, per_node) - 1) // 2)
        elif self.task_manager is None:
            self.task_manager = getattr(self.pilot, "_tmgr", None)
            if self.task_manager is None:  # a pilot with no TaskManager yet: give it one (the session closes it)
                self.task_manager = rp.TaskManager(session=session)
                self.task_manager.add_pilots(self.pilot)  # stays attached: left for the session to close
        self._attach()
        self._check_abort()
        if self._want_raptor:
            self._start_raptor(rp)
        self._wait_for_pilot(rp)

    def _attach(self) -> None:
        if self.task_manager is None:
            self.task_manager = getattr(self.pilot, "_tmgr", None)
        if self.task_manager is None:
            raise ConfigError("RadicalExecutionBackend: the pilot has no TaskManager; pass task_manager=")
        self.task_manager.register_callback(self._task_cb)
        self.pilot.register_callback(self._pilot_cb)
        if self.raptor is not None:
            self._raptor_uids.add(self.raptor.uid)
        if self.pilot.state in _FINAL:
            self._broken = WorkerLost(f"the RADICAL-Pilot pilot {self.pilot.uid} has ended ({self.pilot.state})")

    def _start_raptor(self, rp: Any) -> None:
        master = rp.TaskDescription({"mode": rp.RAPTOR_MASTER, "uid": f"{self._token}.raptor"})
        self.raptor = self.task_manager.submit_raptors([master], self.pilot.uid)[0]
        self._own_raptor = True
        workers = [
            rp.TaskDescription(
                {
                    "mode": rp.RAPTOR_WORKER,
                    "uid": f"{self._token}.raptor.w{i}",
                    "ranks": 1,
                    "cores_per_rank": self.worker_cores,
                    "gpus_per_rank": self._worker_gpus,
                }
            )
            for i in range(self._raptor_workers)
        ]
        self._raptor_uids.update([self.raptor.uid, *(w.uid for w in workers)])
        self.raptor.submit_workers(workers)

    def _wait_for_pilot(self, rp: Any) -> None:
        """A local pilot is waited for until it runs; a batch pilot until its job is submitted."""
        if not self._own_pilot:
            return
        states = [rp.PMGR_ACTIVE] if self._local else [rp.PMGR_ACTIVE_PENDING, rp.PMGR_ACTIVE]
        self.pilot.wait(state=states + list(rp.FINAL), timeout=self._start_timeout)
        self._check_abort()
        state = self.pilot.state
        if state in _FINAL:
            sandbox = self._pilot_sandbox_path()
            said = _stop.pilot_error(sandbox)
            raise WorkerLost(
                f"the RADICAL-Pilot pilot {self.pilot.uid} on {self._resource} ended while starting ({state})"
                + (f"; the agent said:\n{said}\n" if said else "; ")
                + f"see {sandbox or self.pilot.pilot_sandbox} (keep_run_dir=True keeps it)"
            )
        if state not in states:
            raise FlowbridgeError(
                f"the RADICAL-Pilot pilot {self.pilot.uid} on {self._resource} did not start within "
                f"{self._start_timeout} s (state {state})"
            )

    # -- submit ---------------------------------------------------------------------------------

    def submit(self, task: TaskSpec) -> asyncio.Future[Any]:
        if task.resources is not None:
            self.check_resources(task)
        loop = self._loop or asyncio.get_running_loop()
        if task.kind == "function":
            if self.raptor is None:
                raise UnsupportedResource(
                    f"the 'radical' backend was made with raptor=False and runs no function tasks "
                    f"(task {task.name}, {task.uid}); route it to another backend with backend=..."
                )
            fields = _tasks.function_fields(task, worker_cores=self.worker_cores, worker_gpus=self._worker_gpus)
            fields["mode"] = "task.function"
            fields["raptor_id"] = self.raptor.uid
            fields["function"] = _remote.dumps(task.func, task.args, task.kwargs)
        else:
            fields = _tasks.executable_fields(task, local=self._local)
        future: asyncio.Future[Any] = loop.create_future()
        broken = self._broken or (self._no_raptor if task.kind == "function" else None)
        if broken is not None or self._closing:
            future.set_exception(broken or WorkerLost(f"the 'radical' backend is shutting down (task {task.uid})"))
            return future
        uid = f"{self._token}.{next(self._seq):06d}"
        fields["uid"] = uid
        if task.kind == "executable":
            # Every process of the command carries the tag: shutdown kills them on this host itself.
            fields["environment"] = {**fields.get("environment", {}), procs.TASK_ENV: self._task_tag(uid)}
        fields["name"] = task.name[:64]
        entry = _Entry(uid, task.kind, future, fields, task)
        with self._lock:
            self._live[uid] = entry
        future.add_done_callback(lambda f, e=entry: self._on_future_done(e))
        self._outbox.append(entry)
        if not self._flushing:
            self._flushing = True
            loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        batch, self._outbox = self._outbox, []
        self._flushing = False
        if batch and self._pool is not None:
            try:
                self._pool.submit(self._submit_batch, batch)
            except RuntimeError:  # shut down meanwhile
                pass

    def _submit_batch(self, batch: list[_Entry]) -> None:
        """On the submitting thread: hand descriptions to RP, forward cancels that came first."""
        rp = _environ.import_rp()

        todo, descriptions = [], []
        path = tuple(p for p in sys.path if p)
        for entry in batch:
            if entry.future.done():  # cancelled before it reached RP
                self._forget(entry)
                continue
            fields = entry.fields
            if entry.kind == "function":
                fields = dict(fields, function=rp.PythonTask(_remote.run, (fields["function"], path), {}))
            todo.append(entry)
            descriptions.append(rp.TaskDescription(fields))
            entry.fields = None  # the payload now lives in RP's description
        if not descriptions:
            return
        try:
            tasks = self.task_manager.submit_tasks(descriptions)
        except Exception as exc:
            error = FlowbridgeError(f"RADICAL-Pilot refused the task: {type(exc).__name__}: {exc}")
            for entry in todo:
                self._forget(entry)
                self._post(entry.future, _remote.ERROR, error)
            return
        cancelled = []
        for entry, rp_task in zip(todo, tasks, strict=True):
            entry.task = rp_task
            if entry.cancelled and not entry.final:
                cancelled.append(entry)
        if cancelled:
            self._cancel_entries(cancelled)

    def _on_future_done(self, entry: _Entry) -> None:
        """On the loop: the engine cancelled the handle; stop the RP task too."""
        if not entry.future.cancelled() or entry.final or self._closing:
            return
        entry.cancelled = True
        if entry.task is None:
            return  # _submit_batch drops it, or cancels it right after submitting
        try:
            self._pool.submit(self._cancel_entries, [entry])  # type: ignore[union-attr]
        except RuntimeError:
            pass

    def _cancel_entries(self, entries: list[_Entry]) -> None:
        """On the submitting thread: RP kills running executables; RAPTOR functions are signalled here."""
        uids = []
        for entry in entries:
            if entry.final or entry.task is None:
                continue
            if entry.kind == "function" and self._local:
                # RAPTOR tasks report no sandbox until they end; it is <pilot sandbox>/<uid>.
                where = _tasks.sandbox_path(entry.task) or self._sandbox_of(entry.uid)
                if where and _remote.cancel_locally(where):
                    continue
            uids.append(entry.uid)
        if uids:
            try:
                self.task_manager.cancel_tasks(uids)
            except Exception:
                _log.debug("cancel_tasks(%s) failed", uids, exc_info=True)

    def _pilot_sandbox_path(self) -> str | None:
        if self._pilot_sandbox is None:
            url = getattr(self.pilot, "pilot_sandbox", None)
            self._pilot_sandbox = urllib.parse.urlparse(str(url)).path if url else ""
        return self._pilot_sandbox or None

    def _sandbox_of(self, uid: str) -> str | None:
        sandbox = self._pilot_sandbox_path()
        return os.path.join(sandbox, uid) if sandbox else None

    def _task_tag(self, uid: str) -> str:
        return f"radical:{os.uname().nodename}:{uid}"

    def _forget(self, entry: _Entry) -> None:
        with self._lock:
            self._live.pop(entry.uid, None)

    # -- RP callbacks (RP's threads) --------------------------------------------------------------

    def _on_task_state(self, task: Any, state: str) -> None:
        if state not in _FINAL:
            return
        uid = task.uid
        if uid in self._raptor_uids:
            if not self._closing:
                self._raptor_lost(uid, state)
            return
        with self._lock:
            entry = self._live.pop(uid, None)
        if entry is None:
            return
        entry.final = True
        if entry.future.done():
            return
        try:
            if state == "CANCELED":
                kind, value = self._canceled(entry)
            elif entry.kind == "function":
                kind, value = _tasks.function_outcome(task, state, entry.walltime, entry.label)
            else:
                kind, value = _tasks.executable_outcome(task, state, entry.command)
        except Exception as exc:
            _log.exception("reading the outcome of RP task %s", uid)
            kind, value = _remote.ERROR, FlowbridgeError(f"cannot read the outcome of task {entry.label}: {exc!r}")
        self._post(entry.future, kind, value)

    def _canceled(self, entry: _Entry) -> tuple[str, Any]:
        from flowbridge import TaskTimeout

        if entry.walltime is not None:
            return _remote.ERROR, TaskTimeout(f"task {entry.label} ran past its walltime of {entry.walltime} s")
        if self._broken is not None:
            return _remote.ERROR, self._broken
        return _remote.CANCELLED, None  # cancelled outside flowbridge

    def _on_pilot_state(self, pilots: Any, state: str | None = None) -> None:
        # RP 1.103 calls pilot-level callbacks with a list of pilots and no state.
        pilot = next((p for p in (pilots if isinstance(pilots, list) else [pilots]) if p is self.pilot), None)
        if pilot is None or self._closing:
            return
        state = pilot.state
        if state not in _FINAL:
            return
        error = WorkerLost(f"the RADICAL-Pilot pilot {pilot.uid} ended ({state}) with tasks still to run")
        self._broken = error
        if self._live:
            _log.warning("%s", error)
        self._fail_live(error, lambda entry: True)

    def _raptor_lost(self, uid: str, state: str) -> None:
        error = WorkerLost(
            f"the RAPTOR {'master' if uid == getattr(self.raptor, 'uid', None) else 'worker'} "
            f"{uid} ended ({state}); function tasks cannot run"
        )
        if uid == getattr(self.raptor, "uid", None) or self._own_raptor:
            self._no_raptor = error
            self._fail_live(error, lambda entry: entry.kind == "function")

    def _fail_live(self, error: BaseException, which: Any) -> None:
        with self._lock:
            lost = [e for e in self._live.values() if which(e)]
            for entry in lost:
                del self._live[entry.uid]
        for entry in lost:
            entry.final = True
            self._post(entry.future, _remote.ERROR, error)

    def _post(self, future: asyncio.Future[Any], kind: str, value: Any) -> None:
        loop = future.get_loop()
        try:
            loop.call_soon_threadsafe(_settle, future, kind, value)
        except RuntimeError:  # the loop is closed: nobody waits any more
            pass

    # -- shutdown -------------------------------------------------------------------------------

    async def shutdown(self, *, cancel: bool = True) -> None:
        """Cancel this backend's tasks and close what it created.

        ``cancel=True`` returns within ~7 s whatever runs: RP gets ``_GRACE`` seconds to close
        cleanly, then every process this backend started is killed and its run dir removed.
        """
        if self._closed is None:
            self._closed = asyncio.ensure_future(self._shutdown(cancel))
        elif cancel and not self._closed.done():  # a waiting shutdown, now asked to hurry
            try:
                await asyncio.wait_for(asyncio.shield(self._closed), _GRACE)
            except TimeoutError:
                _log.warning("RADICAL-Pilot is still closing after %.1f s more; killing what it started", _GRACE)
                self.kill()
            return
        await asyncio.shield(self._closed)

    async def _shutdown(self, cancel: bool) -> None:
        t0 = time.monotonic()
        starting = self._start_future
        if starting is not None and not starting.done():
            if cancel:  # no waiting for a pilot to come up (20-90 s): stop the start and kill what it made
                self._closing = self._abort = True
                self._cancel_futures()
                self._force()
                self._finish()
                _log.info("RADICAL-Pilot backend stopped while starting, after %.1f s", time.monotonic() - t0)
                return
            await asyncio.gather(starting, return_exceptions=True)
        self._closing = True
        self._outbox.clear()
        self._cancel_futures()
        if starting is None:  # never started: nothing of RP's to close
            return
        if not cancel:
            await off_loop(self._tear_down, name="flowbridge-radical-close")
        else:
            try:
                await off_loop(self._tear_down, False, True, timeout=_GRACE, name="flowbridge-radical-close")
            except TimeoutError:
                _log.info(
                    "RADICAL-Pilot did not close within %.1f s; killing the processes this backend started", _GRACE
                )
                self._force()
        if not self._killed:
            try:
                await off_loop(self._force, True, timeout=_SWEEP_WAIT, name="flowbridge-radical-sweep")
            except TimeoutError:
                _log.debug("the sweep after RADICAL-Pilot's close took over %.1f s", _SWEEP_WAIT)
        self._finish()
        _log.debug("RADICAL-Pilot backend shut down after %.1f s", time.monotonic() - t0)
        self._let_go()
        _environ.collect_quietly()

    def kill(self) -> None:
        """Last resort, quick: kill every process this backend started, remove its run dir.

        What the user brought (their session, pilot, RAPTOR master) is left alone; tasks this
        backend submitted to a pilot on this machine are killed by their ``FLOWBRIDGE_TASK`` tag.
        """
        self._closing = self._abort = True
        self._force()
        self._finish()

    def _cancel_futures(self) -> None:
        with self._lock:
            entries = list(self._live.values())
        for entry in entries:
            if not entry.future.done():
                entry.future.cancel()

    def _force(self, sweep: bool = False) -> None:
        """SIGKILL what this backend started: RP's processes (by run dir), its tasks (by tag), the proxy worker.

        ``sweep``: after RP closed by itself, kill only what it left behind (a pilot cancelled
        in a hurry leaves its RAPTOR master and workers running); RP is not counted as killed.
        """
        if not sweep:
            self._killed = True
        texts = [f"{procs.TASK_ENV}={self._task_tag(self._token + '.')}"] if self._local else []
        under = None
        if self.run_dir is not None and (self._own_session or self._own_pilot):
            # The exact tag, or a path under the run dir (never a sibling run dir whose name starts alike).
            under = str(self.run_dir)
            texts += [f"{procs.OWNER_ENV}={under}\0", os.path.join(under, "")]
        spare = [self._reaper.proc.pid] if self._reaper is not None else []
        killed = _stop.kill_by_text(texts, spare=spare, under=under)
        if self._own_session and self.run_dir is not None:
            _stop.kill_workers(self._proxy_workers)
        if killed:
            _log.info(
                "killed %d process(es) %s", len(killed), "RADICAL-Pilot left behind" if sweep else "of the backend"
            )

    def _finish(self) -> None:
        """After RP closed or was killed: remove the run dir and PSI/J's scripts, stop the reaper."""
        self._remove_files()
        if self.run_dir is not None:
            _stop.closed(self.run_dir)
        reaper, self._reaper = self._reaper, None
        if reaper is not None:
            reaper.stop()
        if self._killed and self._restore_logging is not None:
            self._restore_logging()  # a close cut short may have stripped them already

    def _remove_files(self) -> None:
        """PSI/J's scripts, the run dir's id base and (unless kept) the run dir itself; idempotent."""
        if self._psij is not None:
            self._psij.clean()
        if self.run_dir is not None:
            _environ.release_id_base(self.run_dir)
            if not self._keep:
                shutil.rmtree(self.run_dir, ignore_errors=True)

    def _let_go(self) -> None:
        """A closed backend holds no RP object, so what it closed can be collected now."""
        with self._lock:
            self._live.clear()
        self.session = self.pilot = self.task_manager = self.raptor = self._pmgr = None

    def _bounded_tear_down(self, limit: float) -> None:
        """A failed start: close what came up, killing it if RP does not close within ``limit`` s."""
        worker = threading.Thread(target=self._tear_down, args=(True,), name="flowbridge-radical-close", daemon=True)
        worker.start()
        worker.join(limit)
        if worker.is_alive():
            _log.info("RADICAL-Pilot did not close within %.1f s after a failed start; killing it", limit)
            self._force()
        self._finish()

    def _tear_down(self, quick: bool = False, hurry: bool = False) -> None:
        """Cancel this backend's tasks, then close what it created (5-9 s for an owned session)."""
        if self._torn_down:
            return
        self._torn_down = True
        if self._pool is not None:
            self._pool.shutdown(wait=1.0 if hurry else None)
        t0 = time.monotonic()
        try:
            with _environ.logging_kept() as restore:  # RP's close removes the root logger's handlers
                self._restore_logging = restore
                self._close_rp(quick, hurry)
            _log.debug("RADICAL-Pilot closed after %.1f s", time.monotonic() - t0)
        except Exception:
            if not self._killed:
                _log.warning("RADICAL-Pilot did not close cleanly", exc_info=True)
        finally:
            self._closing = True
            self._remove_files()

    def _close_rp(self, quick: bool, hurry: bool = False) -> None:
        t0 = time.monotonic()
        if not quick:
            self._cancel_everything(wait=not hurry)
            _log.debug("tasks cancelled after %.1f s", time.monotonic() - t0)
        if self._killed:
            return
        if self._own_pilot and self.pilot is not None:
            self.pilot.cancel()
            self.pilot.wait(state=list(_FINAL), timeout=_PILOT_WAIT)
            _log.debug("pilot %s ended after %.1f s", self.pilot.uid, time.monotonic() - t0)
        if self._killed:
            return
        if self._own_session and self.session is not None:
            self.session.close(terminate=True, download=False)
            return
        if self.task_manager is not None and self.pilot is not None:
            self._unregister()
        if self._own_tmgr and self.task_manager is not None:
            self.task_manager.close()
        if self._pmgr is not None:
            self._pmgr.close(terminate=True)

    def _cancel_everything(self, wait: bool = True) -> None:
        with self._lock:
            entries = [e for e in self._live.values() if e.task is not None and not e.final]
        if not wait and self._local:
            # In a hurry: kill the running commands here, at once (RP's cancel takes a round trip).
            _stop.kill_by_text([f"{procs.TASK_ENV}={self._task_tag(self._token + '.')}"], wait=0.5)
        self._cancel_entries(entries)
        # Executables are killed by RP (~0.2 s); signalled functions end on their own, and an
        # owned RAPTOR worker takes its running functions with it.
        waited = [e.uid for e in entries if e.kind == "executable"]
        if self._own_raptor and self.raptor is not None:
            raptors = sorted(self._raptor_uids)
            try:
                self.task_manager.cancel_tasks(raptors)
            except Exception:
                _log.debug("cancelling RAPTOR failed", exc_info=True)
            waited += raptors
        if wait and waited and self.pilot is not None and self.pilot.state not in _FINAL:
            try:
                self.task_manager.wait_tasks(uids=waited, state=list(_FINAL), timeout=_CANCEL_WAIT)
            except Exception:
                _log.debug("waiting for cancelled tasks failed", exc_info=True)
            if _log.isEnabledFor(logging.DEBUG):
                states = {t.uid: t.state for t in self.task_manager.get_tasks(waited)}
                _log.debug("after cancelling: %s", {u: s for u, s in states.items() if s not in _FINAL})

    def _unregister(self) -> None:
        for unregister, cb in (
            (self.task_manager.unregister_callback, self._task_cb),
            (self.pilot.unregister_callback, self._pilot_cb),
        ):
            try:
                unregister(cb)
            except Exception:
                pass


def _settle(future: asyncio.Future[Any], kind: str, value: Any) -> None:
    if future.done():
        return
    if kind == _remote.OK:
        future.set_result(value)
    elif kind == _remote.CANCELLED:
        future.cancel()
    else:
        future.set_exception(value)
