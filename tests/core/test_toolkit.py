"""The adapters' shared toolkit: the codec (calls out, outcomes back) and the ownership stack."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import time

import pytest

from flowbridge.toolkit import codec, procs
from flowbridge.toolkit.owned import Owned


class Handle:
    """Stands for an adapter's native handle (a Dask future, a Parsl handle)."""

    def __init__(self, name: str) -> None:
        self.name = name


def test_native_handles_leave_the_payload_in_order_and_their_values_come_back_in_place():
    a, b = Handle("a"), Handle("b")
    scale = 10

    def body(x, pairs, *, opts):
        return x * scale, pairs, opts

    data, natives = codec.pack_call(body, (a, [(b, 1), {a}]), {"opts": {"k": [b]}}, native=Handle)
    assert natives == [a, b]  # each handle once, in the order met
    func, args, kwargs = codec.load_call(data, ["A", "B"])
    assert func(*args, **kwargs) == ("A" * 10, [("B", 1), {"A"}], {"k": ["B"]})


def test_a_call_without_handles_travels_by_value():
    data, natives = codec.pack_call(lambda x: x + 1, (1,), native=Handle)
    assert natives == []
    func, args, kwargs = pickle.loads(data)  # a closure: only by value could it load
    assert func(*args, **kwargs) == 2
    assert codec.pack_arguments((), {}) == (pickle.dumps(((), {}), protocol=pickle.HIGHEST_PROTOCOL), [])


def test_a_function_is_pickled_again_only_when_what_it_captures_may_have_changed():
    functions = codec.Functions()

    def fixed(x):
        return x + 1

    assert functions.dumps(fixed) is functions.dumps(fixed)
    seen: list[int] = []

    def mutable(x):
        seen.append(x)

    first = functions.dumps(mutable)
    seen.append(1)
    assert functions.dumps(mutable) is not first  # a list it closes over may have changed
    assert codec.load_function(first) is codec.load_function(first)  # the worker's cache, per bytes


def test_outcomes_keep_the_drivers_classes_by_reference():
    packed = codec.pack_outcome(Handle("x"))
    back = codec.load_outcome(packed)
    assert type(back) is Handle and back.name == "x"


def test_an_outcome_pickle_cannot_name_travels_by_value():
    class Local:  # no importable name: plain pickle refuses it
        def __init__(self, v: int) -> None:
            self.v = v

    back = codec.load_outcome(codec.pack_outcome(Local(3)))
    assert back.v == 3


def test_owned_releases_last_made_first_and_only_once(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOWBRIDGE_RUN_DIR", str(tmp_path))
    order: list[str] = []
    own = Owned("kind")
    run_dir = own.run_dir()
    own.callback(order.append, "first made")
    own.callback(lambda: order.append(f"second made, dir there: {run_dir.is_dir()}"))
    own.release()
    own.release()
    assert order == ["second made, dir there: True", "first made"]
    assert not run_dir.exists()
    with pytest.raises(RuntimeError, match="shut down; make a new one"):
        own.run_dir()


def test_owned_keeps_the_run_dir_when_asked_and_goes_on_past_a_failing_step(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("FLOWBRIDGE_RUN_DIR", str(tmp_path))
    own = Owned("kind", keep_run_dir=True)
    run_dir = own.run_dir()
    done: list[bool] = []
    own.callback(done.append, True)
    own.callback(lambda: 1 / 0)
    own.release()
    assert done == [True] and run_dir.is_dir()
    assert "releasing" in caplog.text and "ZeroDivisionError" in caplog.text


def test_owned_adopts_a_given_run_dir_and_removes_it_unless_kept(tmp_path):
    given = tmp_path / "yours" / "run"
    own = Owned("kind")
    assert own.run_dir(given) == given == own.path and given.is_dir()  # made when missing
    own.release()
    assert not given.exists()
    kept = Owned("kind", keep_run_dir=True)
    kept.run_dir(given)
    kept.release()
    assert given.is_dir()


def test_owned_tag_kills_what_carries_it_and_stops_its_reaper(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOWBRIDGE_RUN_DIR", str(tmp_path))
    own = Owned("kind")
    run_dir = own.run_dir()
    reaper = own.tag(str(run_dir))
    assert reaper is not None and reaper.proc.poll() is None
    env = {**os.environ, procs.OWNER_ENV: str(run_dir)}
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], env=env)
    try:
        deadline = time.monotonic() + 10
        while not procs.find({procs.OWNER_ENV: str(run_dir)}) and time.monotonic() < deadline:
            time.sleep(0.05)
        own.release()
        assert child.wait(timeout=10) != 0  # killed, not left to sleep
        reaper.proc.wait(timeout=10)
        assert not run_dir.exists()
    finally:
        child.kill()


def test_checks_say_which_option_and_which_task_in_one_shape():
    from flowbridge import ConfigError, UnsupportedResource
    from flowbridge.adapter import TaskSpec
    from flowbridge.toolkit.checks import cannot_honour, count

    assert count("Owner", "workers", 2) == 2
    assert count("Owner", "workers", None, optional=True) is None
    for bad in (0, True, 1.5, "2"):
        with pytest.raises(ConfigError, match=rf"^Owner: workers={bad!r} must be an int >= 1$"):
            count("Owner", "workers", bad)
    spec = TaskSpec("task.000007", "train", "function")
    error = cannot_honour("dask", spec, "gpus=2", "no worker declares GPU")
    assert isinstance(error, UnsupportedResource) and (error.uid, error.name) == ("task.000007", "train")
    assert str(error) == (
        "the 'dask' backend cannot honour gpus=2 for task train (task.000007): no worker declares GPU; "
        "route the task to a backend that does (backend=...), or drop the field"
    )
