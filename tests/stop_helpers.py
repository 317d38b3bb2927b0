"""Helpers for the interrupt and shutdown tests: a real script or Jupyter kernel, a real SIGINT.

``Script`` runs a workflow script with ``flowbridge run`` or ``python`` in a session
of its own (as a terminal runs a foreground job), waits for a line it prints,
and sends SIGINT to its whole process group, as Ctrl-C in a terminal does: every
process of the group receives it, which is how the terminal's Ctrl-C reaches
services a driver started without care. ``leftovers`` lists the processes that
still mention a text (the run dir) in their command line or environment.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass, field
from pathlib import Path

from flowbridge.toolkit import procs

FLOWBRIDGE = [sys.executable, "-m", "flowbridge"]


def leftovers(text: str, seconds: float = 5.0) -> list[str]:
    """Processes still mentioning ``text`` after up to ``seconds``, as 'pid cmdline' strings."""
    deadline = time.monotonic() + seconds
    while True:
        pids = procs.find(text=text)
        if not pids or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    out = []
    for pid in pids:
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        out.append(f"{pid} {cmd[:200]}")
    return out


@dataclass
class Script:
    """A workflow script run in its own session, its output in files."""

    path: Path
    via: str = "flowbridge"  # or "python"
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    @classmethod
    def write(cls, tmp: Path, source: str, **kw: object) -> Script:
        path = tmp / "wf.py"
        path.write_text(textwrap.dedent(source))
        return cls(path, **kw)  # type: ignore[arg-type]

    @property
    def out(self) -> Path:
        return self.path.with_suffix(".out")

    @property
    def err(self) -> Path:
        return self.path.with_suffix(".err")

    def start(self, *args: str) -> Script:
        argv = [*FLOWBRIDGE, "run", str(self.path)] if self.via == "flowbridge" else [sys.executable, str(self.path)]
        env = {**os.environ, "PYTHONUNBUFFERED": "1", **self.env}
        with self.out.open("wb") as out, self.err.open("wb") as err:
            self.proc = subprocess.Popen(
                [*argv, *args], cwd=self.path.parent, env=env, stdin=subprocess.DEVNULL,
                stdout=out, stderr=err, start_new_session=True,
            )
        return self

    def wait_for(self, text: str, timeout: float = 120.0) -> None:
        """Wait until stdout holds ``text``; fail with both outputs if the script ends first."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while text not in self.out.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"never printed {text!r} (exit {self.proc.poll()}):\n--- stdout\n"
                    f"{self.out.read_text()}\n--- stderr\n{self.err.read_text()[-4000:]}"
                )
            time.sleep(0.05)

    def interrupt(self, timeout: float = 30.0) -> float:
        """Ctrl-C as a terminal sends it (SIGINT to the whole group); seconds until the script ended."""
        assert self.proc is not None
        start = time.monotonic()
        os.killpg(self.proc.pid, signal.SIGINT)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"still running {timeout} s after Ctrl-C:\n--- stdout\n{self.out.read_text()}\n"
                f"--- stderr\n{self.err.read_text()[-4000:]}"
            ) from None
        return time.monotonic() - start

    def wait(self, timeout: float = 120.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()

    @property
    def stderr(self) -> str:
        return self.err.read_text(errors="replace")

    @property
    def stdout(self) -> str:
        return self.out.read_text(errors="replace")


class Kernel:
    """A real IPython kernel (ipykernel through jupyter_client), cells run one at a time."""

    def __init__(self, cwd: Path, env: dict[str, str] | None = None) -> None:
        from jupyter_client.manager import KernelManager

        self.km = KernelManager(kernel_name="python3")
        self.km.kernel_cmd = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        home = {"IPYTHONDIR": str(cwd / ".ipython")}  # no profile litter in the user's HOME
        self.km.start_kernel(cwd=str(cwd), env={**os.environ, **home, **(env or {})})
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)

    def run(self, code: str, timeout: float = 120.0) -> tuple[str, dict[str, object]]:
        """Run a cell; its stdout and its reply (status ok / error with ename)."""
        msg_id = self.kc.execute(textwrap.dedent(code))
        return self._collect(msg_id, timeout)

    def start(self, code: str) -> str:
        return self.kc.execute(textwrap.dedent(code))

    def _collect(self, msg_id: str, timeout: float) -> tuple[str, dict[str, object]]:
        out: list[str] = []
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"cell did not finish within {timeout} s; output so far: {''.join(out)!r}")
            try:
                msg = self.kc.get_iopub_msg(timeout=min(left, 1.0))
            except Exception:  # queue.Empty
                continue
            if msg["parent_header"].get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
            elif msg["msg_type"] == "error":
                out.append(f"{msg['content']['ename']}: {msg['content']['evalue']}\n")
            elif msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                break
        while True:  # the reply to this cell, not a late one to an earlier request
            reply = self.kc.get_shell_msg(timeout=max(1.0, deadline - time.monotonic()))
            if reply["parent_header"].get("msg_id") == msg_id:
                return "".join(out), reply["content"]

    def wait_output(self, msg_id: str, text: str, timeout: float = 120.0) -> None:
        """Wait until the running cell ``msg_id`` printed ``text``."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while text not in "".join(seen):
            if time.monotonic() > deadline:
                raise AssertionError(f"cell never printed {text!r}; got {''.join(seen)!r}")
            try:
                msg = self.kc.get_iopub_msg(timeout=1.0)
            except Exception:
                continue
            if msg["parent_header"].get("msg_id") == msg_id and msg["msg_type"] in ("stream", "error"):
                seen.append(msg["content"].get("text") or msg["content"].get("evalue", ""))

    def interrupt(self, msg_id: str, timeout: float = 30.0) -> tuple[float, str, dict[str, object]]:
        """Interrupt the running cell; seconds until the kernel was idle again, its output and reply."""
        start = time.monotonic()
        self.km.interrupt_kernel()
        out, reply = self._collect(msg_id, timeout)
        return time.monotonic() - start, out, reply

    def close(self) -> None:
        try:
            self.kc.stop_channels()
        finally:
            self.km.shutdown_kernel(now=True)
