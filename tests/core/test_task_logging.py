"""Logging of task lives: a DEBUG line per state change, one WARNING per root failure, no handler by default."""

import logging
import subprocess
import sys

import pytest

import flowbridge
from flowbridge import DependencyFailed, WorkflowEngine


def inc(x=0):
    return x + 1


def boom(*args):
    raise ValueError("the root cause")


async def test_one_debug_line_per_state_change_and_one_warning_per_root_failure(caplog):
    with caplog.at_level(logging.DEBUG, logger="flowbridge.task"):
        async with WorkflowEngine() as flow:
            ok = flow.function_task(inc)()
            assert await ok == 1
            root = flow.function_task(boom)()
            first = flow.function_task(inc)(root)
            second = flow.function_task(inc)(first)
            with pytest.raises(DependencyFailed):
                await second
    task_lines = [r for r in caplog.records if r.name == "flowbridge.task"]
    mine = [r.getMessage() for r in task_lines if r.getMessage().startswith(f"task {ok.uid} ")]
    assert mine == [f"task {ok.uid} (inc) PENDING -> RUNNING", f"task {ok.uid} (inc) RUNNING -> DONE"]
    warnings = [r.getMessage() for r in task_lines if r.levelno == logging.WARNING]
    assert warnings == [f"task {root.uid} (boom) FAILED: ValueError: the root cause"]
    infos = [r.getMessage() for r in task_lines if r.levelno == logging.INFO]
    assert [m.split(" FAILED")[0] for m in infos] == [f"task {first.uid} (inc)", f"task {second.uid} (inc)"]
    assert all("ValueError: the root cause" in m for m in infos)


def test_no_handler_by_default_and_log_to_stderr_adds_one_to_flowbridge_only():
    code = (
        "import logging, flowbridge\n"
        "assert logging.getLogger('flowbridge').handlers == []\n"
        "assert logging.getLogger('flowbridge.task').handlers == []\n"
        "root = list(logging.getLogger().handlers)\n"
        "h = flowbridge.log_to_stderr('INFO')\n"
        "h2 = flowbridge.log_to_stderr('DEBUG')\n"
        "assert logging.getLogger('flowbridge').handlers == [h2], logging.getLogger('flowbridge').handlers\n"
        "assert logging.getLogger().handlers == root\n"
        "from flowbridge import WorkflowEngine\n"
        "with WorkflowEngine() as flow:\n"
        "    t = flow.function_task(lambda: 1 / 0)()\n"
        "    t.exception(10)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "DEBUG   flowbridge.task: task task.000001 (<lambda>) PENDING -> RUNNING" in proc.stderr
    assert "WARNING flowbridge.task: task task.000001 (<lambda>) FAILED: ZeroDivisionError: division by zero" in (
        proc.stderr
    )


def test_log_to_stderr_returns_the_handler_it_added():
    logger = logging.getLogger("flowbridge")
    level = logger.level
    handler = flowbridge.log_to_stderr(logging.WARNING)
    try:
        assert handler in logger.handlers and logger.level == logging.WARNING
        assert handler not in logging.getLogger().handlers
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
