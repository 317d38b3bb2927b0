"""executorlib's task schedulers, built with spawners that tag, isolate and watch their workers.

``SingleNodeExecutor`` and ``SlurmJobExecutor`` start their worker processes with the
driver's plain environment, in the driver's process group, and never notice a worker
that dies before it connected (the task's first ``send`` on the zmq PAIR socket then
blocks forever). So the adapter builds the same schedulers executorlib builds
(``BlockAllocationTaskScheduler`` for plain tasks, ``OneProcessTaskScheduler`` for tasks
with resources) with a spawner that

- tags each worker ``FLOWBRIDGE_OWNER=<run dir>`` (so :mod:`flowbridge.toolkit.procs`
  and the Reaper find it and everything it started, also after the driver was killed),
- starts it in a session of its own (the terminal's Ctrl-C reaches the driver only),
- writes its stderr to a file in the run directory, and
- watches it: when it exits before executorlib shut it down, a throwaway peer connects
  to its port, which releases the blocked ``send``; executorlib then sees the dead
  process and fails the task, which the adapter reports as WorkerLost with the
  process's exit status and stderr tail.

This reaches into executorlib 1.11's internals; the adapter pins ``executorlib<1.12``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from executorlib.standalone.interactive.spawner import MpiExecSpawner
from executorlib.task_scheduler.interactive.blockallocation import BlockAllocationTaskScheduler
from executorlib.task_scheduler.interactive.onetoone import OneProcessTaskScheduler
from executorlib.task_scheduler.interactive.spawner_slurm import SrunSpawner

from flowbridge.toolkit import procs

STDERR_TAIL = 1500


class Deaths:
    """What the adapter learns of workers that died on their own: the last words of each."""

    def __init__(self) -> None:
        self.by_future: dict[int, str] = {}
        self.last: str | None = None
        self.pool_deaths = 0  # workers of a block-allocated pool that died on their own
        self.lock = threading.Lock()

    def record(self, future: Any, text: str) -> None:
        with self.lock:
            self.last = text
            if future is not None:
                self.by_future[id(future)] = text
            else:
                self.pool_deaths += 1

    def why(self, future: Any) -> str | None:
        with self.lock:
            return self.by_future.pop(id(future), None) or self.last

    def close(self) -> None:
        """Nothing to release: watchers are daemon threads that end with their worker."""


def tagged_spawner(base: type, owner: str, run_dir: Path, deaths: Deaths) -> type:
    """A subclass of an executorlib spawner class that tags, isolates and watches its processes."""
    counter = iter(range(sys.maxsize))
    base_shutdown: Callable[..., None] = getattr(base, "shutdown")  # noqa: B009 (base is typed `type`)
    env = procs.tag_env(owner)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (os.getcwd(), os.environ.get("PYTHONPATH")) if p)

    def bootup(self: Any, command_lst: list[str], stop_function: Callable[[], bool] | None = None) -> bool:
        if self._cwd is not None:
            os.makedirs(self._cwd, exist_ok=True)
        # OneProcessTaskScheduler boots one worker per task, from a thread that carries the task's future
        future = getattr(threading.current_thread(), "_kwargs", {}).get("future_obj")
        err_path = run_dir / f"worker-{next(counter)}.err"
        argv = self.generate_command(command_lst=command_lst)
        self._fb_stopping = False
        try:
            err = open(err_path, "wb")
        except FileNotFoundError:  # the adapter shut down (run dir removed) while this pool thread booted
            return False
        with err:
            self._process = subprocess.Popen(
                argv, cwd=self._cwd, stdin=subprocess.DEVNULL, stderr=err, env=env, start_new_session=True
            )
        port = command_lst[command_lst.index("--zmqport") + 1] if "--zmqport" in command_lst else None
        threading.Thread(
            target=_watch, args=(self, self._process, err_path, port, future, deaths), daemon=True,
            name="flowbridge-executorlib-watch",
        ).start()
        return bool(self.poll())

    def shutdown(self: Any, wait: bool = True) -> None:
        self._fb_stopping = True
        base_shutdown(self, wait=wait)  # the spawner's own

    return type(f"Flowbridge{base.__name__}", (base,), {"bootup": bootup, "shutdown": shutdown})


def _watch(spawner: Any, proc: subprocess.Popen[bytes], err_path: Path, port: str | None, future: Any,
           deaths: Deaths) -> None:
    code = proc.wait()
    if getattr(spawner, "_fb_stopping", False):
        return
    try:
        tail = err_path.read_text(errors="replace")[-STDERR_TAIL:].strip()
    except OSError:
        tail = ""
    how = f"was killed by signal {-code}" if code < 0 else f"exited with status {code}"
    text = f"{Path(proc.args[0]).name if isinstance(proc.args, list) else proc.args!s} {how}"
    deaths.record(future, text + (f"; stderr: {tail}" if tail else ""))
    if port is not None:
        _release(port)


def _release(port: str, seconds: float = 5.0) -> None:
    """Take the one message a blocked ``send`` wants to deliver to a worker that is gone, then leave."""
    import zmq

    context = zmq.Context()
    socket = context.socket(zmq.PAIR)
    try:
        socket.connect(f"tcp://127.0.0.1:{port}")
        socket.poll(int(seconds * 1000))
    finally:
        socket.close(linger=0)
        context.term()


def pool_size(options: dict[str, Any]) -> int:
    return int(options.get("max_workers") or (os.cpu_count() or 1))


def schedulers(
    kind: str, owner: str, run_dir: Path, deaths: Deaths, cache_directory: str | None, options: dict[str, Any],
    *, pool_only: bool = False,
) -> tuple[Any, Any]:
    """``(block, per_task)``: a block-allocated pool for plain tasks, one process per task for the rest."""
    base = MpiExecSpawner if kind == "single_node" else SrunSpawner
    spawner = tagged_spawner(base, owner, run_dir, deaths)
    common: dict[str, Any] = {
        "cores": 1,
        "cwd": None,
        "openmpi_oversubscribe": bool(options.get("openmpi_oversubscribe", False)),
        "cache_directory": cache_directory,
        "hostname_localhost": options.get("hostname_localhost", kind == "single_node"),
        "log_obj_size": False,
    }
    if kind == "slurm_job":
        common["pmi_mode"] = options.get("pmi_mode")
        common["threads_per_core"] = 1
        common["gpus_per_core"] = 0
        common["slurm_cmd_args"] = list(options.get("slurm_cmd_args", []))
    block = BlockAllocationTaskScheduler(
        max_workers=pool_size(options),
        executor_kwargs={**common, "init_function": None},
        spawner=spawner,
        restart_limit=0,
    )
    if pool_only:
        return block, None
    per_task = OneProcessTaskScheduler(
        max_cores=options.get("max_cores"),
        max_workers=None,
        executor_kwargs=dict(common),
        spawner=spawner,
    )
    return block, per_task
