"""Bad input gets a clear error that names the fix, at the call site or on the future."""

import asyncio

import pytest

from flowbridge import (
    BackendUnavailable,
    ConcurrentExecutionBackend,
    EngineClosed,
    Resources,
    UnsupportedResource,
    WorkflowEngine,
)


@pytest.fixture
async def flow():
    engine = await WorkflowEngine.create()
    yield engine
    await engine.shutdown(cancel=True)


def test_decorating_a_non_callable(flow):
    with pytest.raises(TypeError, match="decorates a function; got int"):
        flow.function_task(3)
    with pytest.raises(TypeError, match="decorates a function"):
        flow.executable_task(name="x")("not callable")


def test_unknown_decorator_option(flow):
    with pytest.raises(TypeError, match=r"unknown option\(s\) 'cores'.*takes: name, resources, retries"):
        flow.function_task(cores=2)


@pytest.mark.parametrize(
    "option", [{"timeout": -1}, {"timeout": 0}, {"timeout": "5"}, {"retries": -1}, {"retries": 1.5}]
)
def test_negative_or_wrong_timeout_and_retries(flow, option):
    with pytest.raises(ValueError, match=f"{next(iter(option))} must be"):
        flow.function_task(**option)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"cores": -1}, r"cores=-1\) must be >= 1"),
        ({"gpus": -2}, r"gpus=-2\) must be >= 0"),
        ({"ranks": 0}, r"ranks=0\) must be >= 1"),
        ({"threads": 1.5}, "must be an int"),
        ({"memory": "lots"}, "is not a size"),
        ({"memory": "4XB"}, "unknown unit"),
        ({"walltime": "ten minutes"}, "is not a duration"),
        ({"walltime": -5}, "must be positive"),
        ({"walltime": "-5"}, "is not a duration"),
    ],
)
def test_bad_resources(fields, message):
    with pytest.raises((ValueError, TypeError), match=message):
        Resources(**fields)


def test_unknown_resource_field():
    with pytest.raises(TypeError, match="unexpected keyword argument 'disk'"):
        Resources(disk=4)
    with pytest.raises(ValueError, match="unknown resource field.*disk.*known: cores"):
        Resources.coerce({"disk": 4})


def test_resources_parse_units():
    r = Resources(cores=2, memory="2GiB", walltime="01:30:00")
    assert (r.memory, r.walltime) == (2 * 1024**3, 5400.0)
    assert Resources(walltime="1-00:00:00").walltime == 86400.0
    assert Resources.coerce({"cores": 2}) == Resources(cores=2)
    with pytest.raises(AttributeError, match="immutable"):
        r.cores = 3


def test_threads_refuse_resources_at_decoration(flow):
    with pytest.raises(UnsupportedResource, match="'concurrent' backend cannot honour gpus"):
        flow.function_task(resources=Resources(gpus=1))(print)


async def test_executable_bad_returns(flow):
    for bad, message in [
        (None, "not NoneType"),
        (3, "not int"),
        ("  ", "empty command"),
        ([], "empty argv"),
        (["ls", None], "holding None"),
    ]:
        task = flow.executable_task(name="bad")(lambda bad=bad: bad)()
        with pytest.raises(TypeError, match=message) as info:
            await task
        assert "executable task bad" in str(info.value)


def test_block_must_be_async(flow):
    def plain():
        return 1

    with pytest.raises(TypeError, match="@block needs an async function: 'plain'"):
        flow.block(plain)
    with pytest.raises(TypeError, match=r"block\(resources=...\) is not supported"):
        flow.block(resources=Resources(cores=1))


def test_unknown_backend_name_lists_known():
    with pytest.raises(ValueError, match=r"unknown backend 'daskk' \(did you mean 'dask'\?\); known backends: .*parsl"):
        WorkflowEngine(backend="daskk")


def test_known_but_uninstalled_backend_names_the_extra(monkeypatch):
    from flowbridge import _registry

    monkeypatch.setitem(_registry.KNOWN, "flux", ("flowbridge_flux:FluxExecutionBackend", "flux"))
    monkeypatch.setitem(_registry.CLASS_NAMES, "FluxExecutionBackend", "flux")
    with pytest.raises(BackendUnavailable, match=r"'flux' is not installed; pip install \"flowbridge\[flux\]\""):
        WorkflowEngine(backend="flux")
    with pytest.raises(ImportError):  # also catchable as the ImportError it is
        from flowbridge import FluxExecutionBackend  # noqa: F401


def test_wrong_backend_type():
    with pytest.raises(TypeError, match="takes an adapter"):
        WorkflowEngine(backend=42)
    with pytest.raises(TypeError, match="backend= or backends=, not both"):
        WorkflowEngine(backend="concurrent", backends={"a": "concurrent"})
    with pytest.raises(TypeError, match="concurrent.futures.Executor"):
        ConcurrentExecutionBackend(executor=object())


async def test_unknown_route(flow):
    with pytest.raises(ValueError, match=r"backend='gpu' is not one of this engine's backends \('default'\)"):
        flow.function_task(backend="gpu")(print)


async def test_submit_after_shutdown_is_a_clear_error():
    flow = await WorkflowEngine.create()
    task = flow.function_task(abs)
    await flow.shutdown()
    await flow.shutdown()  # idempotent
    with pytest.raises(EngineClosed, match="has been shut down; create a new WorkflowEngine"):
        task(-1)


async def test_result_on_the_loop_before_done_says_await(flow):
    task = flow.function_task(lambda: asyncio.run(asyncio.sleep(0.2)))()
    with pytest.raises(asyncio.InvalidStateError, match="await it"):
        task.result()
    await task


async def test_task_errors_carry_their_task(flow):
    import time

    from flowbridge import DependencyFailed, TaskTimeout
    from flowbridge._errors import TaskError

    def boom():
        raise RuntimeError("no")

    slow = flow.function_task(timeout=0.05)(time.sleep)(1)
    with pytest.raises(TaskTimeout) as timed_out:
        await slow
    assert (timed_out.value.uid, timed_out.value.name) == (slow.uid, "sleep")
    upstream = flow.function_task(boom)()
    downstream = flow.function_task(print)(upstream)
    with pytest.raises(DependencyFailed) as failed:
        await downstream
    assert isinstance(failed.value, TaskError) and (failed.value.uid, failed.value.name) == (downstream.uid, "print")
    assert failed.value.dependency.startswith(upstream.uid)
