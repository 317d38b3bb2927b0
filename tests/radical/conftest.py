"""Fixtures for the RADICAL-Pilot tests: one real session and pilot on local.localhost for the package.

Starting RADICAL-Pilot costs ~30 processes and 15-45 s, so the tests in this folder
share one backend that owns its session, pilot and RAPTOR master; each test then
makes its own adapter on that pilot through the "bring your own session and pilot"
constructor, which also proves that such an adapter closes nothing it did not create.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

# Not importorskip: importing radical.pilot outside a backend would create ~/.radical.
if importlib.util.find_spec("radical") is None or importlib.util.find_spec("radical.pilot") is None:
    pytest.skip("radical.pilot is not installed", allow_module_level=True)
pytest.importorskip("flowbridge_radical")

from radical_helpers import close_leftover_zmq, wait_until_gone

from flowbridge import RadicalExecutionBackend

#: Generous: RP starts in 15-45 s on a busy 2-core machine.
START_TIMEOUT = 240
HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # RADICAL-Pilot leaves its ZMQ sockets and contexts to the garbage collector ("rely on GC
    # for destruction") and pyzmq warns about each one, in whichever test the collection falls
    # (the shared session closes in the teardown of this folder's last test).
    ours = [i for i, item in enumerate(items) if HERE in Path(str(item.path)).resolve().parents]
    for i in ours:
        items[i].add_marker(pytest.mark.filterwarnings("ignore:Unclosed:ResourceWarning"))
    # The seeds start sessions of their own: run them before the shared one starts, not beside it.
    mine = [items[i] for i in ours]
    mine.sort(key=lambda item: Path(str(item.path)).name != "test_seeds.py")
    for i, item in zip(ours, mine, strict=True):
        items[i] = item


@pytest.fixture(scope="package")
def run_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("flowbridge-run")
    return root


@pytest.fixture(scope="package")
def shared(run_root: Path) -> Iterator[Any]:
    """A backend that owns a session, a pilot and RAPTOR on local.localhost, for every test here."""
    backend = RadicalExecutionBackend({"resource": "local.localhost"}, run_dir=run_root / "shared")
    try:
        asyncio.run(asyncio.wait_for(backend.start(), START_TIMEOUT))
    except BaseException:
        asyncio.run(backend.shutdown())
        raise
    yield backend
    mine = logging.NullHandler()  # RP's session.close() strips the root logger: it must be put back
    logging.getLogger().addHandler(mine)
    # Package-scoped teardown runs outside any test's warning filters: silence pyzmq here too.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Unclosed", ResourceWarning)
        try:
            # The clean close (cancel=False): shutdown(cancel=True) may cut RP's close short and kill
            # its processes, and RP's threads in this process would then poll sockets destroyed below.
            asyncio.run(backend.shutdown(cancel=False))
            assert mine in logging.getLogger().handlers, "the root logger lost a handler"
        finally:
            logging.getLogger().removeHandler(mine)
        close_leftover_zmq()  # the last RP session in this process is closed
    assert not (run_root / "shared").exists(), "the run directory was not removed"
    left = wait_until_gone(str(run_root / "shared"))
    assert not left, f"processes left after shutdown: {left}"


@pytest.fixture
def reuse(shared: Any) -> Any:
    """A fresh adapter on the shared pilot and RAPTOR master (closes none of them)."""
    return RadicalExecutionBackend(
        pilot=shared.pilot, task_manager=shared.task_manager, raptor=shared.raptor, worker_cores=shared.worker_cores
    )
