"""``flowbridge.log_to_stderr``: turn flowbridge's logging on without touching the root logger."""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The handler log_to_stderr installs; a second call replaces it rather than adding another."""


def log_to_stderr(level: int | str = "INFO") -> logging.Handler:
    """Add one handler writing to stderr to the ``flowbridge`` logger (only), set its level, return it.

    The ``flowbridge.task`` logger writes one DEBUG line per state change of a task
    and a WARNING per failure with its error; a task that failed because a
    dependency did is logged at INFO, the root cause once at WARNING. Call it
    again to change the level: the previous handler is replaced. Remove it with
    ``logging.getLogger("flowbridge").removeHandler(handler)``. flowbridge
    installs no handler by itself.
    """
    logger = logging.getLogger("flowbridge")
    for old in [h for h in logger.handlers if isinstance(h, _StderrHandler)]:
        logger.removeHandler(old)
    handler = _StderrHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(FORMAT))
    logger.addHandler(handler)
    logger.setLevel(level.upper() if isinstance(level, str) else level)
    return handler
