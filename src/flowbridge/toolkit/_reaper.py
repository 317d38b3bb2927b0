"""``python -m flowbridge.toolkit._reaper PID TICKS OWNER [RUN_DIR]``: see :class:`procs.Reaper`.

Waits for process PID (started at TICKS) to exit, then kills every process whose
environment carries ``FLOWBRIDGE_OWNER=OWNER`` and removes RUN_DIR. SIGTERM ends
it quietly: the owner cleaned up by itself.
"""

from __future__ import annotations

import os
import select
import shutil
import signal
import sys
import time

from flowbridge.toolkit.procs import OWNER_ENV, reap, start_ticks


def _wait_for_exit(pid: int, ticks: str) -> None:
    try:
        fd = os.pidfd_open(pid)
    except OSError:
        fd = -1
    if start_ticks(pid) != ticks:
        return
    if fd >= 0:
        select.select([fd], [], [])
        return
    while start_ticks(pid) == ticks:  # no pidfd: poll
        time.sleep(0.5)


def main() -> None:
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    pid, ticks, owner, *rest = sys.argv[1:]
    _wait_for_exit(int(pid), ticks)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # past this point, finish the job
    reap({OWNER_ENV: owner}, grace=0.5)
    if rest:
        shutil.rmtree(rest[0], ignore_errors=True)


if __name__ == "__main__":
    main()
