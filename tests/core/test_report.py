"""flow.report() and flow.graph(): summary, JSON, Chrome trace, HTML, DOT and Mermaid, from the records."""

import asyncio
import json
import os
import re
import shutil
import threading
import time

import pytest

from flowbridge import DependencyFailed, WorkflowEngine
from flowbridge._graph import GraphvizNotFound


def inc(x=0):
    return x + 1


def slow_inc(x=0):
    time.sleep(0.05)  # the chain a -> b -> d outlasts boom on any machine: it is the critical path
    return x + 1


def add(a, b):
    return a + b


def boom(*args):
    raise ValueError("boom")


async def diamond_with_a_failure(flow):
    """a -> b, a -> c, (b, c) -> d; e fails, f depends on e."""
    t_inc, t_add = flow.function_task(slow_inc), flow.function_task(add)
    a = t_inc()
    b, c = t_inc(a), flow.function_task(inc)(a)
    d = t_add(b, c)
    e = flow.function_task(boom)()
    f = t_inc(e)
    assert await d == 4
    with pytest.raises(ValueError):
        await e
    with pytest.raises(DependencyFailed):
        await f
    return a, b, c, d, e, f


async def test_summary_counts_makespan_critical_path_latency_and_root_failures():
    async with WorkflowEngine() as flow:
        a, b, c, d, e, f = await diamond_with_a_failure(flow)
        report = flow.report()
    assert [r.uid for r in report.tasks] == [t.uid for t in (a, b, c, d, e, f)]
    assert report.counts() == {
        "default (concurrent)": {"PENDING": 0, "RUNNING": 0, "DONE": 4, "FAILED": 2, "CANCELLED": 0}
    }
    assert report.makespan is not None and report.makespan > 0
    total, path = report.critical_path()
    assert [r.uid for r in path] == [a.uid, b.uid, d.uid]
    assert total >= sum(report._by_uid[u].attempts[-1].duration for u in (a.uid, b.uid, d.uid)) - 1e-9
    ((root, because),) = report.failures()
    assert root.uid == e.uid and [r.uid for r in because] == [f.uid]
    assert len(report.latencies()) == 5  # every attempt that reached the backend: all but f
    text = report.summary()
    assert re.search(r"default \(concurrent\)\s+0\s+0\s+4\s+2\s+0\s+6", text), text
    assert "makespan: " in text and "critical path: 3 task(s)" in text
    assert "latency, hand-over to end, 5 attempt(s): p50 " in text
    assert f"{e.uid} (boom) on default (concurrent): ValueError: boom; 1 dependent task(s) failed because of it" in text


async def test_json_has_every_record(tmp_path):
    async with WorkflowEngine() as flow:
        a, b, c, d, _, f = await diamond_with_a_failure(flow)
        flow.report().to_json(tmp_path / "r.json")
    data = json.loads((tmp_path / "r.json").read_text())
    tasks = {t["uid"]: t for t in data["tasks"]}
    assert {dep["uid"] for dep in tasks[d.uid]["deps"]} == {b.uid, c.uid}
    assert tasks[f.uid]["root_type"] == "ValueError" and tasks[f.uid]["state"] == "FAILED"
    assert tasks[a.uid]["attempts"][0]["outcome"] == "DONE"
    assert data["critical_path"]["tasks"][-1] == d.uid


async def test_chrome_trace_loads_and_every_event_is_complete(tmp_path):
    async with WorkflowEngine() as flow:
        a, b, c, d, e, f = await diamond_with_a_failure(flow)

        @flow.block
        async def blk():
            return await flow.function_task(inc)(1)

        assert await blk() == 2
        flow.report().to_chrome_trace(tmp_path / "trace.json")
    doc = json.loads((tmp_path / "trace.json").read_text())
    events = doc["traceEvents"]
    for event in events:
        assert {"ph", "ts", "pid", "tid"} <= set(event), event
        assert event["ph"] in {"X", "M", "i", "s", "f"}
    bars = [ev for ev in events if ev["ph"] == "X"]
    assert sorted(ev["args"]["uid"] for ev in bars) == sorted(
        [a.uid, b.uid, c.uid, d.uid, e.uid] + [r.uid for r in flow.records[6:]]
    )
    assert all(ev["dur"] >= 0 and ev["ts"] >= 0 for ev in bars)
    processes = {ev["args"]["name"] for ev in events if ev["ph"] == "M" and ev["name"] == "process_name"}
    # a track per worker process (the pool's threads run in this one), the driver's for the block,
    # and the backend's own for f, which never reached a worker
    worker = f"default (concurrent) {os.uname().nodename}:{os.getpid()}"
    assert processes == {worker, "default (concurrent)", "driver"}
    thread_names = {ev["args"]["name"] for ev in events if ev["ph"] == "M" and ev["name"] == "thread_name"}
    assert any(name.startswith("flowbridge_") for name in thread_names)  # the pool threads that ran the bodies
    assert all(ev["args"]["queued_ms"] > -50 for ev in bars if ev["cat"] != "block")  # clocks: ms of slack
    starts = [ev for ev in events if ev["ph"] == "s"]
    finishes = [ev for ev in events if ev["ph"] == "f"]
    assert len(starts) == len(finishes) == 4  # a->b, a->c, b->d, c->d (e->f never ran: no arrow)
    assert {ev["id"] for ev in starts} == {ev["id"] for ev in finishes}
    never_ran = [ev for ev in events if ev["ph"] == "i"]
    assert [ev["args"]["uid"] for ev in never_ran] == [f.uid]
    by_uid = {ev["args"]["uid"]: ev for ev in bars}
    assert by_uid[d.uid]["ts"] >= by_uid[b.uid]["ts"] + by_uid[b.uid]["dur"] - 1  # d handed over after b ended


async def test_html_report_is_self_contained_with_one_bar_per_attempt(tmp_path):
    async with WorkflowEngine() as flow:
        tasks = await diamond_with_a_failure(flow)
        flow.report().to_html(tmp_path / "r.html")
    page = (tmp_path / "r.html").read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert "http://" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "") and "https://" not in page
    assert "<script src" not in page and "<link" not in page  # everything inline
    assert page.count('<rect class="bar"') == 5  # f never reached the backend
    assert page.count('<g class="node"') == 6  # the graph has every task, f included
    assert f"{tasks[4].uid} (boom)" in page and "ValueError: boom" in page


def test_report_works_from_a_synchronous_engine():
    with WorkflowEngine() as flow:
        a = flow.function_task(inc)()
        b = flow.function_task(inc)(a)
        report_before = flow.report()  # from the caller's thread, while the loop runs elsewhere
        assert [r.deps for r in report_before.tasks] == [[], [(a.uid, "value")]]
        assert b.result(10) == 2
    assert flow.report().counts() == {"default (concurrent)": dict(PENDING=0, RUNNING=0, DONE=2, FAILED=0, CANCELLED=0)}


# -- the graph -------------------------------------------------------------------------------


async def test_graph_before_anything_ran_matches_the_dag():
    gate = threading.Event()
    async with WorkflowEngine() as flow:
        t_inc, t_add = flow.function_task(inc), flow.function_task(add)
        a = flow.function_task(lambda: gate.wait(10) and 0, name="slow")()
        b, c = t_inc(a), t_inc(a)
        d = t_add(b, c)
        graph = flow.graph()
        dot, mermaid = graph.to_dot(), graph.to_mermaid()
        gate.set()
        await d
    assert sorted(graph.edges) == sorted(
        [(a.uid, b.uid, "value"), (a.uid, c.uid, "value"), (b.uid, d.uid, "value"), (c.uid, d.uid, "value")]
    )
    assert dot.startswith("digraph flowbridge {") and dot.rstrip().endswith("}")
    edges = set(re.findall(r'"(task\.\d+)" -> "(task\.\d+)"', dot))
    assert edges == {(a.uid, b.uid), (a.uid, c.uid), (b.uid, d.uid), (c.uid, d.uid)}
    assert f'"{d.uid}" [label="add\\n{d.uid} PENDING"' in dot
    assert mermaid.startswith("flowchart LR\n")
    m_edges = set(re.findall(r"(task_\d+) --> (task_\d+)", mermaid))
    ids = {t.uid: t.uid.replace(".", "_") for t in (a, b, c, d)}
    assert m_edges == {
        (ids[a.uid], ids[b.uid]),
        (ids[a.uid], ids[c.uid]),
        (ids[b.uid], ids[d.uid]),
        (ids[c.uid], ids[d.uid]),
    }


async def test_graph_on_a_dry_run_draws_blocks_as_clusters():
    async with WorkflowEngine(dry_run=True) as flow:
        t_inc = flow.function_task(inc)

        @flow.block
        async def stage(x):
            return await t_inc(t_inc(x))

        first = stage(1)
        second = stage(first)
        await second
        graph = flow.graph()
    records = {r.uid: r for r in graph.tasks}
    assert records[first.uid].backend == "driver"
    assert {r.backend for r in graph.tasks if r.kind == "function"} == {"noop"}
    assert (first.uid, second.uid, "value") in graph.edges
    dot = graph.to_dot()
    assert f'subgraph "cluster_{first.uid}"' in dot and f'subgraph "cluster_{second.uid}"' in dot
    mermaid = graph.to_mermaid()
    assert mermaid.count("subgraph ") == 2 and mermaid.count("\n  end") + mermaid.count("\n    end") >= 2


async def test_render_draws_png_and_svg_with_graphviz(tmp_path):
    if not shutil.which("dot"):
        pytest.skip("graphviz (dot) is not installed: apt-get install graphviz")
    async with WorkflowEngine(dry_run=True) as flow:
        await flow.function_task(inc)(flow.function_task(inc)())
        graph = flow.graph()
    out = graph.render(tmp_path / "g.svg")
    assert (tmp_path / "g.svg").read_text().lstrip().startswith(("<?xml", "<svg"))
    assert graph.render(tmp_path / "g.png") == out.replace(".svg", ".png")
    png = (tmp_path / "g.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 1000


async def test_render_needs_graphviz_and_says_how_to_get_it(tmp_path, monkeypatch):
    async with WorkflowEngine(dry_run=True) as flow:
        await flow.function_task(inc)(flow.function_task(inc)())
        graph = flow.graph()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(GraphvizNotFound, match="apt-get install graphviz"):
        graph.render(tmp_path / "g.png")
    with pytest.raises(ValueError, match=r"\.png or \.svg"):
        graph.render(tmp_path / "g.pdf")


async def test_report_and_graph_refuse_under_record_false():
    async with WorkflowEngine(record=False) as flow:
        await flow.function_task(inc)()
        with pytest.raises(RuntimeError, match="record=False"):
            flow.report()
        with pytest.raises(RuntimeError, match="record=False"):
            flow.graph()


async def test_a_cancelled_task_shows_in_counts():
    async with WorkflowEngine() as flow:
        gate = asyncio.get_running_loop().create_future()
        waiting = flow.function_task(inc)(gate)
        waiting.cancel()
        counts = flow.report().counts()
    assert counts["default (concurrent)"]["CANCELLED"] == 1


async def test_a_failure_caused_by_a_plain_future_is_its_own_root():
    async with WorkflowEngine() as flow:
        plain = asyncio.get_running_loop().create_future()
        plain.set_exception(KeyError("not a task"))
        failed = flow.function_task(inc)(plain)
        with pytest.raises(DependencyFailed):
            await failed
        ((root, because),) = flow.report().failures()
    assert root.uid == failed.uid and because == []
    assert root.root_type == "KeyError"
