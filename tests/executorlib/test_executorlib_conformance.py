"""The conformance suite on kind="single_node": a block-allocated pool flowbridge builds and owns."""

from typing import Any

import pytest

from flowbridge import ExecutorlibExecutionBackend
from flowbridge.testing import ConformanceSuite


class TestExecutorlibConformance(ConformanceSuite):
    cancel_running = False  # a block-allocated worker runs a started body to its end; its value is dropped

    @pytest.fixture
    def backend(self) -> Any:
        return ExecutorlibExecutionBackend(max_workers=2)
