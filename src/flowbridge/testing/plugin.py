"""pytest plugin: the ``flowbridge_backend`` fixture, one fresh adapter per test.

``pytest --flowbridge-backend=dask --flowbridge-backend=profile:cluster`` runs every
test that takes ``flowbridge_backend`` on each named backend; without the option it
runs on local threads and local processes.
"""

from __future__ import annotations

from typing import Any

import pytest

DEFAULT = ("threads", "processes")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--flowbridge-backend",
        action="append",
        default=[],
        help="backend for flowbridge_backend: threads, processes, a registry name or profile:NAME (repeatable)",
    )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "flowbridge_backend" in metafunc.fixturenames:
        names = metafunc.config.getoption("flowbridge_backend") or list(DEFAULT)
        metafunc.parametrize("flowbridge_backend", names, indirect=True)


def make_backend(name: str) -> Any:
    """A fresh adapter for a backend label used by the plugin."""
    from flowbridge import ConcurrentExecutionBackend
    from flowbridge._config import backend_from_profile
    from flowbridge._registry import create

    if name == "threads":
        return ConcurrentExecutionBackend()
    if name == "processes":
        return ConcurrentExecutionBackend(processes=True, max_workers=2)
    if name.startswith("profile:"):
        return backend_from_profile(name.partition(":")[2])
    return create(name)


@pytest.fixture
def flowbridge_backend(request: pytest.FixtureRequest) -> Any:
    return make_backend(request.param)
