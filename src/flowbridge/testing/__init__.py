"""The conformance suite: the semantics every flowbridge adapter must show.

Adapter packages (and users with their own adapters) prove conformance by
subclassing :class:`ConformanceSuite` with a ``backend`` fixture::

    from flowbridge.testing import ConformanceSuite

    class TestMine(ConformanceSuite):
        @pytest.fixture
        def backend(self):
            return MyBackend(...)

The ``flowbridge`` pytest plugin also runs it on any backend named with
``--flowbridge-backend=NAME`` through the ``flowbridge_backend`` fixture.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ConformanceSuite"]


def __getattr__(name: str) -> Any:
    # Lazy: importing flowbridge.testing.bodies in a worker must not import pytest.
    if name == "ConformanceSuite":
        from .suite import ConformanceSuite

        return ConformanceSuite
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
