"""Fixtures for the executorlib adapter tests: run directories in the session's temp dir."""

from __future__ import annotations

import pytest

pytest.importorskip("executorlib")
pytest.importorskip("flowbridge_executorlib")


@pytest.fixture(autouse=True)
def _run_dir_in_tmp(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Adapters' run directories go to this session's temp dir."""
    root = tmp_path_factory.getbasetemp() / "flowbridge-run"
    root.mkdir(exist_ok=True)
    monkeypatch.setenv("FLOWBRIDGE_RUN_DIR", str(root))
