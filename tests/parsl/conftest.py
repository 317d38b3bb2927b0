"""Fixtures for the Parsl adapter tests: one user DataFlowKernel per test module, real HTEX."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("parsl")
pytest.importorskip("flowbridge_parsl")

from parsl_helpers import user_config


@pytest.fixture(scope="module")
def user_dfk(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A user's own DataFlowKernel (never parsl.load), shared by a module's tests; cleaned up here."""
    from parsl.dataflow.dflow import DataFlowKernel

    dfk = DataFlowKernel(user_config(tmp_path_factory.mktemp("user-runinfo"), max_workers_per_node=3))
    yield dfk
    dfk.cleanup()


@pytest.fixture(autouse=True)
def _run_dir_in_tmp(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Adapters' run directories go to this session's temp dir."""
    root = tmp_path_factory.getbasetemp() / "flowbridge-run"
    root.mkdir(exist_ok=True)
    monkeypatch.setenv("FLOWBRIDGE_RUN_DIR", str(root))
