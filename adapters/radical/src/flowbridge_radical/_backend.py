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
import concurrent.futures
import itertools
import logging
import os
import shutil
import sys
import threading
import time
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flowbridge import ConfigError, FlowbridgeError, UnsupportedResource, WorkerLost
from flowbridge.adapter import Adapter, TaskSpec, make_run_dir

from . import _environ, _pilot, _remote, _tasks

if TYPE_CHECKING:
    import radical.pilot as rp

_log = logging.getLogger("flowbridge.radical")
_FINAL = ("DONE", "FAILED", "CANCELED")
_BACKENDS = itertools.count(1)
#: Seconds to wait for cancelled tasks, then for the pilot, at shutdown.
_CANCEL_WAIT = 5.0
_PILOT_WAIT = 10.0


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
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
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
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="flowbridge-radical")
        # Shielded: a cancelled start leaves RP coming up, and shutdown waits for it to close it.
        self._start_future = asyncio.ensure_future(asyncio.to_thread(self._start_blocking))
        await asyncio.shield(self._start_future)

    def _start_blocking(self) -> None:
        creates = self._own_session or self._own_pilot or self._want_raptor or self.task_manager is None
        if creates:  # sandboxes, and RADICAL state of the processes RP spawns for us
            self.run_dir = self._run_dir_given or make_run_dir("radical")
            self.run_dir.mkdir(parents=True, exist_ok=True)
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
            with _environ.patched(env, self.run_dir if self._own_session else None):
                self._bring_up()
        except BaseException:
            self._tear_down(quick=True)
            raise

    def _bring_up(self) -> None:
        rp = _environ.import_rp()

        if self._own_session:
            self.session = rp.Session()
            _log.info("RADICAL-Pilot session %s in %s", self.session.uid, self.run_dir)
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
        state = self.pilot.state
        if state in _FINAL:
            raise WorkerLost(
                f"the RADICAL-Pilot pilot {self.pilot.uid} on {self._resource} ended while starting ({state}); "
                f"see {self.pilot.pilot_sandbox} (keep_run_dir=True keeps it)"
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

    def _sandbox_of(self, uid: str) -> str | None:
        if self._pilot_sandbox is None:
            url = getattr(self.pilot, "pilot_sandbox", None)
            self._pilot_sandbox = urllib.parse.urlparse(str(url)).path if url else ""
        return os.path.join(self._pilot_sandbox, uid) if self._pilot_sandbox else None

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
        if self._closed is None:
            self._closed = asyncio.ensure_future(self._shutdown())
        await asyncio.shield(self._closed)

    async def _shutdown(self) -> None:
        starting = self._start_future
        if starting is not None and not starting.done():
            await asyncio.gather(starting, return_exceptions=True)
        self._closing = True
        self._outbox.clear()
        with self._lock:
            entries = list(self._live.values())
        for entry in entries:
            if not entry.future.done():
                entry.future.cancel()
        if starting is None:  # never started: nothing of RP's to close
            return
        await asyncio.to_thread(self._tear_down)
        self._let_go()
        _environ.collect_quietly()

    def _let_go(self) -> None:
        """A closed backend holds no RP object, so what it closed can be collected now."""
        with self._lock:
            self._live.clear()
        self.session = self.pilot = self.task_manager = self.raptor = self._pmgr = None

    def _tear_down(self, quick: bool = False) -> None:
        """Cancel this backend's tasks, then close what it created (6-11 s for an owned session)."""
        if self._torn_down:
            return
        self._torn_down = True
        if self._pool is not None:
            self._pool.shutdown(wait=True)
        t0 = time.monotonic()
        try:
            with _environ.logging_kept():  # RP's close removes the root logger's handlers
                self._close_rp(quick)
            _log.debug("RADICAL-Pilot closed after %.1f s", time.monotonic() - t0)
        except Exception:
            _log.warning("RADICAL-Pilot did not close cleanly", exc_info=True)
        finally:
            self._closing = True
            if self._psij is not None:
                self._psij.clean()
            if self.run_dir is not None:
                _environ.release_id_base(self.run_dir)
                if not self._keep:
                    shutil.rmtree(self.run_dir, ignore_errors=True)

    def _close_rp(self, quick: bool) -> None:
        t0 = time.monotonic()
        if not quick:
            self._cancel_everything()
            _log.debug("tasks cancelled after %.1f s", time.monotonic() - t0)
        if self._own_pilot and self.pilot is not None:
            self.pilot.cancel()
            self.pilot.wait(state=list(_FINAL), timeout=_PILOT_WAIT)
            _log.debug("pilot %s ended after %.1f s", self.pilot.uid, time.monotonic() - t0)
        if self._own_session and self.session is not None:
            self.session.close(terminate=True, download=False)
            return
        if self.task_manager is not None and self.pilot is not None:
            self._unregister()
        if self._own_tmgr and self.task_manager is not None:
            self.task_manager.close()
        if self._pmgr is not None:
            self._pmgr.close(terminate=True)

    def _cancel_everything(self) -> None:
        with self._lock:
            entries = [e for e in self._live.values() if e.task is not None and not e.final]
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
        if waited and self.pilot is not None and self.pilot.state not in _FINAL:
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
