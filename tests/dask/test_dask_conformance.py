"""The conformance suite on a LocalCluster that flowbridge builds and owns, one per test."""

from typing import Any

import pytest

from flowbridge import DaskExecutionBackend
from flowbridge.testing import ConformanceSuite


class TestDaskConformance(ConformanceSuite):
    cancel_running = False  # Dask releases a running task, but its worker thread runs the body to the end

    @pytest.fixture
    def backend(self) -> Any:
        return DaskExecutionBackend(n_workers=1, threads_per_worker=2)
