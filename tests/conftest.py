"""Suite-wide settings. FLOWBRIDGE_NO_SKIP=1 (set by .ci/run) turns any skip into a failure."""

import os

import pytest

pytest_plugins = ["infra.slurm_plugin"]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("FLOWBRIDGE_NO_SKIP") != "1":
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    skipped = reporter.stats.get("skipped", []) if reporter else []
    if skipped:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        names = ", ".join(r.nodeid for r in skipped[:20])
        if reporter:
            reporter.write_line(
                f"FLOWBRIDGE_NO_SKIP=1: {len(skipped)} test(s) skipped, which counts as failure: {names}", red=True
            )
