"""Reusing Dask the user already runs: a scheduler and workers started with the `dask` CLI as
separate processes (one set for this module), the user's clients and cluster objects.
Shutdown must leave all of them running."""

from __future__ import annotations

import asyncio
import gc
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dask_helpers import CliCluster, PeakRSS, start_cli_cluster

from flowbridge import (
    DaskExecutionBackend,
    DependencyFailed,
    Resources,
    TaskState,
    UnsupportedResource,
    WorkerLost,
    WorkflowEngine,
)

QUICK = 60


def inc(x: int) -> int:
    return x + 1


def fail(message: str) -> None:
    raise KeyError(message)


def sleep_then(seconds: float, value: Any = None) -> Any:
    time.sleep(seconds)
    return value


def worker_pid() -> int:
    return os.getpid()


def ones(megabytes: int) -> Any:
    import numpy

    return numpy.ones(megabytes * 1_000_000 // 8)


def bump(array: Any) -> Any:
    return array + 1


def checksum(array: Any) -> float:
    return float(array[:10].sum() + array[-10:].sum())


def die() -> None:
    os._exit(3)  # the worker process dies; its nanny starts a new one


def die_until(counter: str, deaths: int) -> int:
    path = Path(counter)
    count = int(path.read_text()) + 1 if path.exists() else 1
    path.write_text(str(count))
    if count <= deaths:
        os._exit(3)
    return count


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliCluster]:
    cluster = start_cli_cluster(tmp_path_factory.mktemp("dask-cli"))
    try:
        yield cluster
    finally:
        cluster.stop()


async def still_serves(address: str) -> None:
    from distributed import Client

    async with Client(address, asynchronous=True) as client:
        assert await client.submit(inc, 41, pure=False) == 42


async def test_address_runs_on_the_workers_and_leaves_the_cluster_up(cli: CliCluster) -> None:
    backend = DaskExecutionBackend(address=cli.address)
    flow = await asyncio.wait_for(WorkflowEngine.create(backend=backend), QUICK)
    try:
        a = flow.function_task(inc)
        value = a(0)
        for _ in range(9):
            value = a(value)
        assert await asyncio.wait_for(value, QUICK) == 10
        workers = set((await backend.client.run(os.getpid)).values())
        pids = await asyncio.gather(*(flow.function_task(worker_pid)() for _ in range(4)))
        assert set(pids) <= workers and os.getpid() not in pids
        parent = await asyncio.wait_for(flow.executable_task(lambda: "echo $PPID")(), QUICK)
        assert int(parent) in workers  # the command's parent is a worker process
    finally:
        await asyncio.wait_for(flow.shutdown(), QUICK)
    assert backend.client.status == "closed"  # the client flowbridge opened is closed ...
    assert cli.alive()  # ... the scheduler and workers are not
    await still_serves(cli.address)


async def test_scheduler_file_from_plain_options(cli: CliCluster) -> None:
    from flowbridge._registry import create

    backend = create("dask", {"scheduler_file": str(cli.scheduler_file)})  # as a profile holds it
    async with WorkflowEngine(backend=backend) as flow:
        assert await asyncio.wait_for(flow.function_task(inc)(1), QUICK) == 2
    assert cli.alive()
    await still_serves(cli.address)


async def test_your_asynchronous_client_cancel_reaches_it_and_it_stays_usable(cli: CliCluster) -> None:
    from distributed import Client

    client = await Client(cli.address, asynchronous=True)
    cancelled: list[str] = []
    real_cancel = client.cancel

    def spy(futures: Any, *args: Any, **kwargs: Any) -> Any:
        cancelled.extend(f.key for f in futures)
        return real_cancel(futures, *args, **kwargs)

    client.cancel = spy
    try:
        backend = DaskExecutionBackend(client=client)
        flow = await asyncio.wait_for(WorkflowEngine.create(backend=backend), QUICK)
        assert backend.client is client
        slow = flow.function_task(sleep_then)(2.0)
        after = flow.function_task(inc)(slow)
        await asyncio.sleep(0.3)
        assert slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await asyncio.wait_for(after, QUICK)
        for _ in range(100):
            if cancelled:
                break
            await asyncio.sleep(0.05)
        assert any(slow.uid in key for key in cancelled), cancelled
        assert await asyncio.wait_for(flow.function_task(inc)(1), QUICK) == 2
        await asyncio.wait_for(flow.shutdown(), QUICK)
        assert client.status == "running"
        assert await client.submit(inc, 1, pure=False) == 2
    finally:
        await client.close()
    assert cli.alive()


async def test_your_sync_client_is_bridged_without_blocking_the_loop(cli: CliCluster) -> None:
    from distributed import Client

    client = await asyncio.to_thread(Client, cli.address)  # never built on the loop's thread
    ticks = 0

    async def heartbeat() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    beat = asyncio.create_task(heartbeat())
    try:
        flow = await asyncio.wait_for(WorkflowEngine.create(backend=DaskExecutionBackend(client=client)), QUICK)
        a = flow.function_task(inc)
        value = a(0)
        for _ in range(4):
            value = a(value)
        assert await asyncio.wait_for(value, QUICK) == 5
        root = flow.function_task(fail)("root")
        child = a(root)
        with pytest.raises(DependencyFailed) as info:
            await asyncio.wait_for(a(child), QUICK)
        assert isinstance(info.value.root, KeyError) and child.state is TaskState.FAILED
        with pytest.raises(KeyError):
            await root
        assert await asyncio.wait_for(flow.executable_task(lambda: ["echo", "sync"])(), QUICK) == "sync\n"
        slow = flow.function_task(sleep_then)(1.0)
        await asyncio.sleep(0.2)
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        await asyncio.wait_for(flow.shutdown(), QUICK)
        assert ticks > 0  # the loop kept running while the sync client worked
        future = await asyncio.to_thread(client.submit, inc, 1, pure=False)
        assert await asyncio.to_thread(future.result, 30) == 2
    finally:
        beat.cancel()
        await asyncio.to_thread(client.close)
    assert cli.alive()


async def test_chain_of_100mb_arrays_stays_on_the_workers(cli: CliCluster, record_property: Any) -> None:
    backend = DaskExecutionBackend(address=cli.address)
    async with WorkflowEngine(backend=backend) as flow:
        fetched: list[str] = []
        real_fetch = backend._bridge.fetch

        async def counting_fetch(future: Any, label: str) -> Any:
            fetched.append(label)
            return await real_fetch(future, label)

        backend._bridge.fetch = counting_fetch
        gc.collect()
        with PeakRSS() as chain:
            value = flow.function_task(ones)(100)
            for _ in range(7):
                value = flow.function_task(bump)(value)
            assert await asyncio.wait_for(flow.function_task(checksum)(value), QUICK) == 20 * 8.0
        assert len(fetched) == 1  # only the checksum came to the driver
        with PeakRSS() as final:
            array = await asyncio.wait_for(value, QUICK)  # now the last array comes over, once
        assert float(array[0]) == 8.0 and array.nbytes == 100_000_000
        record_property("rss_growth_chain_mb", round(chain.growth_mb, 1))
        record_property("rss_growth_with_final_value_mb", round((final.peak - chain.baseline) / 1e6, 1))
        print(
            f"\nRSS growth: chain {chain.growth_mb:.1f} MB; with the final 100 MB value fetched "
            f"{(final.peak - chain.baseline) / 1e6:.1f} MB"
        )
        assert chain.growth_mb < 250
        assert (final.peak - chain.baseline) / 1e6 < 250


async def test_resources_are_checked_against_your_workers(cli: CliCluster) -> None:
    async with WorkflowEngine(backend=DaskExecutionBackend(address=cli.address)) as flow:
        foo = flow.function_task(resources=Resources(extra={"FOO": 1}))(inc)
        assert await asyncio.wait_for(foo(1), QUICK) == 2  # the CLI workers declare FOO=2
        for asked, name in (
            (Resources(extra={"FOO": 3}), "FOO=3"),
            (Resources(extra={"BAR": 1}), "BAR=1"),
            (Resources(gpus=1), "GPU=1"),
            (Resources(cores=1), "CPU=1"),
        ):
            task = flow.function_task(resources=asked)(inc)(1)
            with pytest.raises(UnsupportedResource, match=name):
                await asyncio.wait_for(task, QUICK)  # refused, never pending forever
        with pytest.raises(UnsupportedResource, match="threads"):
            flow.function_task(resources=Resources(threads=2))(inc)


async def test_two_engines_on_one_cluster_never_share_keys(cli: CliCluster) -> None:
    async with (
        WorkflowEngine(backend=DaskExecutionBackend(address=cli.address)) as one,
        WorkflowEngine(backend=DaskExecutionBackend(address=cli.address)) as two,
    ):
        # Same task names and the same uids in both engines: only the keys tell them apart.
        a1 = one.function_task(name="step")(inc)
        a2 = two.function_task(name="step")(lambda x: x - 1)
        first = [a1(i) for i in range(30)]
        second = [a2(i) for i in range(30)]
        assert first[0].uid == second[0].uid
        assert await asyncio.gather(*first) == [i + 1 for i in range(30)]
        assert await asyncio.gather(*second) == [i - 1 for i in range(30)]


async def test_your_cluster_object_stays_up(tmp_path: Path) -> None:
    from distributed import Client, LocalCluster

    cluster = await LocalCluster(
        n_workers=1,
        threads_per_worker=1,
        processes=False,
        dashboard_address=None,
        asynchronous=True,
        local_directory=str(tmp_path),
        scheduler_kwargs={"local_directory": str(tmp_path), "dashboard": False, "dashboard_address": "127.0.0.1:0"},
    )
    try:
        async with WorkflowEngine(backend=DaskExecutionBackend(cluster=cluster)) as flow:
            assert await asyncio.wait_for(flow.function_task(inc)(1), QUICK) == 2
        assert cluster.status.name == "running"
        async with Client(cluster, asynchronous=True) as client:
            assert await client.submit(inc, 2, pure=False) == 3
    finally:
        await cluster.close()


@pytest.mark.slow
async def test_killed_worker_is_worker_lost_or_a_retry(cli: CliCluster, tmp_path: Path) -> None:
    # The CLI scheduler runs with allowed-failures=1: a task that killed two workers is KilledWorker.
    backend = DaskExecutionBackend(address=cli.address)
    async with WorkflowEngine(backend=backend) as flow:
        with pytest.raises(WorkerLost, match="lost the worker"):
            await asyncio.wait_for(flow.function_task(die)(), QUICK)
        counter = tmp_path / "deaths"
        survivor = flow.function_task(retries=1)(die_until)(str(counter), 2)
        assert await asyncio.wait_for(survivor, QUICK) == 3  # attempt 2 ran after attempt 1 was lost
        await backend.client.wait_for_workers(2, timeout=QUICK)  # the nannies restarted them
    assert cli.alive()
