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

from .suite import ConformanceSuite

__all__ = ["ConformanceSuite"]
