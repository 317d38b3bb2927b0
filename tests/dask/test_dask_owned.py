"""What flowbridge builds and owns: its LocalCluster (loopback, resources, run dir, shutdown),
and the constructor's checks (no cluster needed for those)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from flowbridge import DaskExecutionBackend, Resources, UnsupportedResource, WorkflowEngine

QUICK = 60


def inc(x: int) -> int:
    return x + 1


def listening_addresses() -> set[str]:
    """The IPs this process and its children (the worker processes) listen on."""
    import psutil

    me = psutil.Process()
    found = set()
    for proc in [me, *me.children(recursive=True)]:
        for conn in proc.net_connections(kind="inet"):
            if conn.status == psutil.CONN_LISTEN:
                found.add(conn.laddr.ip)
    return found


async def test_owned_local_cluster(tmp_path_factory: pytest.TempPathFactory) -> None:
    backend = DaskExecutionBackend(n_workers=1, threads_per_worker=2, worker_resources={"GPU": 1})
    flow = await asyncio.wait_for(WorkflowEngine.create(backend=backend), QUICK)
    try:
        run_dir = backend.run_dir
        assert run_dir is not None and run_dir.is_dir()
        assert run_dir.parent == tmp_path_factory.getbasetemp() / "flowbridge-run"  # FLOWBRIDGE_RUN_DIR
        assert (run_dir / "dask-scratch-space").is_dir()  # scheduler and worker scratch: in the run dir
        cluster = backend.cluster
        assert cluster.scheduler_address.startswith("tcp://127.0.0.1:")
        info = await backend.client.scheduler.identity(n_workers=-1)
        assert all(addr.startswith("tcp://127.0.0.1:") for addr in info["workers"])
        assert listening_addresses() == {"127.0.0.1"}  # scheduler, workers, nannies, HTTP: loopback only
        (worker,) = info["workers"].values()
        assert worker["resources"]["CPU"] == 2 and worker["resources"]["GPU"] == 1
        assert worker["resources"]["MEMORY"] > 0

        fits = Resources(cores=2, gpus=1, memory="100MB")
        assert await asyncio.wait_for(flow.function_task(resources=fits)(inc)(1), QUICK) == 2
        for too_much in (Resources(cores=3), Resources(gpus=2), Resources(memory="100TB")):
            task = flow.function_task(resources=too_much)(inc)(1)
            with pytest.raises(UnsupportedResource, match="flowbridge's LocalCluster"):
                await asyncio.wait_for(task, QUICK)
        with pytest.raises(UnsupportedResource, match="walltime"):
            flow.function_task(resources=Resources(walltime=60))(inc)
    finally:
        await asyncio.wait_for(flow.shutdown(), QUICK)
    assert cluster.status.name == "closed" and backend.client.status == "closed"
    assert not run_dir.exists()
    assert not (Path.cwd() / "dask-scratch-space").exists()


async def test_start_failure_leaves_no_run_dir(tmp_path_factory: pytest.TempPathFactory) -> None:
    root = tmp_path_factory.getbasetemp() / "flowbridge-run"
    before = set(root.iterdir())
    backend = DaskExecutionBackend(n_workers=1, memory_limit="lots")  # a type Dask finds wrong only at start
    with pytest.raises(Exception, match="failed to start"):
        await asyncio.wait_for(WorkflowEngine.create(backend=backend), QUICK)
    assert set(root.iterdir()) == before


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"address": "tcp://127.0.0.1:1", "client": object()}, TypeError, "one of"),
        ({"address": "tcp://127.0.0.1:1", "n_workers": 2}, TypeError, "n_workers"),
        ({"scheduler_file": "x.json", "worker_resources": {"GPU": 1}}, TypeError, "worker_resources"),
        ({"jobs": 2}, TypeError, "jobqueue"),
        ({"jobqueue": "nosuch"}, ValueError, "slurm"),
        ({"jobqueue": "slurm", "jobs": 2, "adapt": (1, 2)}, TypeError, "not both"),
        ({"jobqueue": "slurm", "jobs": 0}, ValueError, "jobs=0 must be an int >= 1"),
        ({"jobqueue": "slurm", "adapt": (3, 1)}, ValueError, "min"),
        ({"asynchronous": True}, TypeError, "asynchronous"),
        ({"resources": {"GPU": 1}}, TypeError, "worker_resources"),
        ({"client": "tcp://127.0.0.1:1"}, TypeError, "Client"),
    ],
)
def test_constructor_checks(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        DaskExecutionBackend(**kwargs)


def test_registered_and_importable_from_flowbridge() -> None:
    from importlib.metadata import entry_points

    import flowbridge
    from flowbridge._registry import load
    from flowbridge_dask import DaskExecutionBackend as direct

    assert flowbridge.DaskExecutionBackend is direct is load("dask")
    (ep,) = [ep for ep in entry_points(group="flowbridge.adapters") if ep.name == "dask"]
    assert ep.load() is direct
    adapted = DaskExecutionBackend(jobqueue="SLURM", adapt=[0, 2], cores=1, memory="1GB")  # plain data, as in TOML
    assert "jobqueue" in repr(adapted) and adapted.cluster is None and adapted.client is None


def test_options_as_one_dict_as_asyncflow_0_1_wrote_them() -> None:
    from_dict = DaskExecutionBackend({"jobqueue": "slurm", "jobs": 2, "cores": 1, "memory": "1GB"}, name="hpc")
    assert repr(from_dict) == repr(DaskExecutionBackend(jobqueue="slurm", jobs=2, cores=1, memory="1GB"))
    assert from_dict.name == "hpc"
    with pytest.raises(TypeError, match="in the dict and as keywords"):
        DaskExecutionBackend({"n_workers": 1}, n_workers=2)
    with pytest.raises(TypeError, match="dict of options"):
        DaskExecutionBackend(["n_workers", 1])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="n_workers"):  # the same checks as keywords
        DaskExecutionBackend({"address": "tcp://127.0.0.1:1", "n_workers": 2})


async def test_threads_only_cluster_starts_and_listens_nowhere_but_loopback() -> None:
    backend = DaskExecutionBackend(n_workers=1, threads_per_worker=2, processes=False)  # inproc://, in this process
    async with WorkflowEngine(backend=backend) as flow:
        assert await asyncio.wait_for(flow.function_task(inc)(1), QUICK) == 2
        assert listening_addresses() <= {"127.0.0.1"}
