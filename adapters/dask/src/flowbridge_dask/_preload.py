"""Dask worker preload (by file path) for the worker processes of a LocalCluster flowbridge owns.

Those processes share the driver's process group, so a terminal's Ctrl-C reaches
them too: without this, each dies of KeyboardInterrupt with a traceback and its
nanny restarts it while the driver is shutting the cluster down. They ignore
SIGINT instead; the driver stops them (and kills them if it must).
"""

from __future__ import annotations

import signal
import threading
from typing import Any


def dask_setup(worker: Any = None) -> None:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)
