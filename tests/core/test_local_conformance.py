"""The conformance suite on the embedded backends: local threads and local processes."""

from typing import Any

import pytest

from flowbridge.testing import ConformanceSuite


class TestConformance(ConformanceSuite):
    cancel_running = False  # a thread or pool process cannot be stopped mid-function

    @pytest.fixture
    def backend(self, flowbridge_backend: Any) -> Any:
        return flowbridge_backend
