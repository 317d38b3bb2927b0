"""``Report.to_html``: one self-contained HTML file (inline CSS, SVG and script; nothing from the network).

The page is drawn on the Python side as SVG, so it reads without JavaScript;
a small inline script adds what a static picture cannot: colour by state or by
backend, zoom (mouse wheel) and pan (drag) on the time axis, a name filter, and
a click on a bar or a graph node that picks out the task, what it waited for
and what waited for it, with its details.

The timeline and graph are built from plain record dicts (``TaskRecord.as_dict()``
or a report JSON file), so ``flowbridge compare`` draws the same pictures from
the reports of its runs.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Sequence
from importlib import resources
from typing import TYPE_CHECKING, Any

from ._graph import COLOURS
from ._report import _backend_label, _lane, _one_line

if TYPE_CHECKING:
    from ._report import Report

#: attempts drawn at most; the rest are counted in a note (the JSON and trace files have them all)
MAX_BARS = 5000
#: tasks drawn in the dependency graph at most
MAX_NODES = 300
WIDTH = 1000  # px of the time axis
LEFT = 190  # px for the lane labels
#: colours for backends (colour-by "backend"), in order of first appearance
PALETTE = ["#4e79a7", "#f28e2b", "#59a14f", "#b07aa1", "#76b7b2", "#edc948", "#ff9da7", "#9c755f", "#bab0ac"]

CSS = """
body{font-family:Helvetica,Arial,sans-serif;margin:1.5em;color:#222}
pre{background:#f6f6f6;padding:.8em;overflow-x:auto}
table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;vertical-align:top}
.legend span{display:inline-block;padding:.1em .6em;margin-right:.4em;border:1px solid #888}
.controls{margin:.5em 0}.controls label{margin-right:1em}
svg text{font-size:11px}
svg.timeline{cursor:grab;user-select:none}
.dim{opacity:.15}.picked rect,.picked.bar{stroke:#000;stroke-width:1.5}
#details{min-height:1.5em;font-family:monospace;white-space:pre-wrap}
"""


def render(report: Report) -> str:
    """The report's page: summary, timeline, dependency graph, failures."""
    title = f"flowbridge report {report.name}"
    records = [r.as_dict() for r in _first_drawn(report)]
    timeline = Timeline([("", records)])
    parts = [
        *_head(title),
        f"<h1>{html.escape(title)}</h1>",
        f"<p>Written {html.escape(time.strftime('%Y-%m-%d %H:%M:%S'))}.</p>",
        "<h2>Summary</h2>",
        f"<pre>{html.escape(report.summary())}</pre>",
        "<h2>Timeline</h2>",
        TIMELINE_HELP,
        timeline.controls(),
        timeline.svg(),
        timeline.note(len(records) < len(report.tasks)),
        "<h2>Dependency graph</h2>",
        graph_svg(records if len(records) == len(report.tasks) else []),
        "<h2>Failures</h2>",
        _failures(report),
        *_tail(timeline),
    ]
    return "\n".join(parts) + "\n"


TIMELINE_HELP = (
    "<p>A bar spans an attempt from its hand-over to the backend to the moment the driver learnt of its end; "
    "where the backend reported when the body started and ended on its worker, that part is drawn darker "
    "inside it (the pale part before it is time queued). Scroll to zoom, drag to pan, double-click to reset; "
    "click a bar for the task and its dependencies.</p>"
)


def _head(title: str) -> list[str]:
    return [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        f"<style>{CSS}</style></head><body>",
    ]


def _tail(timeline: Timeline) -> list[str]:
    data = json.dumps(timeline.data()).replace("</", "<\\/")
    return [
        f'<script type="application/json" id="fb-data">{data}</script>',
        f"<script>{_script()}</script>",
        "</body></html>",
    ]


def _script() -> str:
    return (resources.files(__package__) / "_html.js").read_text(encoding="utf-8")


def _first_drawn(report: Report) -> list[Any]:
    """The records of the first MAX_BARS attempts (by hand-over) and of the tasks that never got one."""
    drawn, count = [], 0
    for r in sorted(report.tasks, key=lambda r: r.created_perf):
        count += max(1, len(r.attempts))
        if count > MAX_BARS:
            break
        drawn.append(r)
    return drawn


class Timeline:
    """Bars for the attempts of one or more runs (``(title, records)``), drawn on one time axis.

    Each run's times count from its own first task's call, so runs made one
    after another (``flowbridge compare``) line up from zero.
    """

    def __init__(self, runs: Sequence[tuple[str, Sequence[dict[str, Any]]]]) -> None:
        self.runs: list[tuple[str, list[dict[str, Any]]]] = []  # (title, bars)
        self.deps: dict[str, list[str]] = {}
        self.info: dict[str, str] = {}
        backends: dict[str, str] = {}
        span = 0.0
        for index, (title, records) in enumerate(runs):
            prefix = f"{index}:" if len(runs) > 1 else ""
            base = min((r["created"] for r in records), default=0.0)
            bars = []
            for r in records:
                uid = prefix + r["uid"]
                self.deps[uid] = [prefix + d["uid"] for d in r["deps"]]
                self.info[uid] = _info(r)
                label = _label(r)
                backends.setdefault(label, PALETTE[len(backends) % len(PALETTE)])
                for a in r["attempts"]:
                    end = a["ended"] if a["ended"] is not None else r.get("ended")
                    bar = {
                        "uid": uid,
                        "name": r["name"],
                        "label": label,
                        "state": a["outcome"] or "RUNNING",
                        "t0": a["submitted"] - base,
                        "t1": None if end is None else end - base,
                        "r0": None if a.get("started") is None else a["started"] - base,
                        "r1": None if a.get("finished") is None else a["finished"] - base,
                        "tip": _tip(r, a),
                    }
                    span = max(span, bar["t0"], bar["t1"] or 0.0, bar["r1"] or 0.0)
                    bars.append(bar)
            self.runs.append((title, bars))
        self.span = max(span, 1e-6)
        self.backends = backends

    @property
    def bar_count(self) -> int:
        return sum(len(bars) for _, bars in self.runs)

    def data(self) -> dict[str, Any]:
        return {"left": LEFT, "width": WIDTH, "span": self.span, "deps": self.deps, "info": self.info}

    def controls(self) -> str:
        state_legend = "".join(f'<span style="background:{c}">{html.escape(s)}</span>' for s, c in COLOURS.items())
        backend_legend = "".join(
            f'<span style="background:{c};color:#fff">{html.escape(b)}</span>' for b, c in self.backends.items()
        )
        return (
            '<div class="controls"><label>colour by <select id="colour-by"><option value="state">state</option>'
            '<option value="backend">backend</option></select></label>'
            '<label>filter by name <input id="filter" type="search" size="18"></label></div>'
            f'<p class="legend" data-by="state">{state_legend}</p>'
            f'<p class="legend" data-by="backend" hidden>{backend_legend}</p>'
            '<p id="details"></p>'
        )

    def note(self, truncated: bool) -> str:
        if not truncated:
            return ""
        return (
            f"<p>Only the first {MAX_BARS} attempts are drawn (and the graph is left out); "
            "to_json() and to_chrome_trace() have them all.</p>"
        )

    def svg(self) -> str:
        if not self.bar_count:
            return "<p>No task was handed to a backend.</p>"
        scale = WIDTH / self.span
        placed, lanes_of = [], []
        for title, bars in self.runs:
            lanes: dict[str, list[tuple[float, int]]] = {}
            for bar in sorted(bars, key=lambda b: (b["t0"], b["uid"])):
                end = bar["t1"] if bar["t1"] is not None else self.span
                lane = _lane(lanes.setdefault(bar["label"], []), bar["t0"], end)
                placed.append((title, bar["label"], lane, bar))
            lanes_of.append((title, lanes))
        offsets: dict[tuple[str, str], int] = {}
        headings: list[tuple[str, int]] = []
        groups: list[tuple[str, int, int]] = []  # (backend label, first row, lanes)
        y = 0
        for title, lanes in lanes_of:
            if title:
                headings.append((title, y))
                y += 1
            for label, heap in lanes.items():
                offsets[(title, label)] = y
                groups.append((label, y, len(heap)))
                y += len(heap)
        row = 14 if y <= 60 else max(2, 840 // y)
        height = y * row + 30
        out = [
            f'<svg class="timeline" xmlns="http://www.w3.org/2000/svg" width="{LEFT + WIDTH + 20}" '
            f'height="{height}" role="img">'
        ]
        for title, first in headings:
            out.append(f'<text x="4" y="{first * row + 11}" font-weight="bold">{html.escape(title)}</text>')
        for label, first, count in groups:
            out.append(
                f'<text x="14" y="{first * row + 11}">{html.escape(_one_line(label, 26))} ({count} lane(s))</text>'
                f'<line x1="{LEFT}" x2="{LEFT + WIDTH}" y1="{first * row}" y2="{first * row}" stroke="#bbb"/>'
            )
        for title, label, lane, bar in placed:
            end = bar["t1"] if bar["t1"] is not None else self.span
            top = (offsets[(title, label)] + lane - 1) * row
            common = f'data-uid="{html.escape(bar["uid"])}" data-name="{html.escape(bar["name"])}"'
            colour = COLOURS.get(bar["state"], "#ccc")
            out.append(
                f'<rect class="bar" {common} x="{LEFT + bar["t0"] * scale:.1f}" y="{top + 1}" '
                f'width="{max(1.0, (end - bar["t0"]) * scale):.1f}" height="{max(1, row - 2)}" fill="{colour}" '
                f'data-sc="{colour}" data-bc="{self.backends[label]}" stroke="#555" stroke-width="0.3">'
                f"<title>{html.escape(bar['tip'])}</title></rect>"
            )
            if bar["r0"] is not None and bar["r1"] is not None:
                out.append(
                    f'<rect class="run" {common} x="{LEFT + bar["r0"] * scale:.1f}" y="{top + 1 + row // 4}" '
                    f'width="{max(1.0, (bar["r1"] - bar["r0"]) * scale):.1f}" height="{max(1, row // 2 - 1)}" '
                    f'fill="#000" fill-opacity="0.35"><title>{html.escape(bar["tip"])}</title></rect>'
                )
        base = y * row + 14
        for i in range(6):
            out.append(
                f'<text class="tick" data-frac="{i / 5}" x="{LEFT + WIDTH * i / 5:.0f}" y="{base + 10}" '
                f'text-anchor="middle">{self.span * i / 5:.3g} s</text>'
            )
        out.append("</svg>")
        return "\n".join(out)


def graph_svg(records: Sequence[dict[str, Any]]) -> str:
    """The dependency graph, layered left to right (a task one column after its latest dependency)."""
    if not records:
        return "<p>Not drawn: too many tasks for one picture (use flow.graph().render('graph.svg')).</p>"
    if len(records) > MAX_NODES:
        return (
            f"<p>Not drawn: {len(records)} tasks is more than {MAX_NODES} for one picture; "
            "flow.graph().render('graph.svg') draws it with graphviz.</p>"
        )
    depth: dict[str, int] = {}
    columns: dict[int, list[dict[str, Any]]] = {}
    for r in records:  # call order is a topological order
        d = 1 + max((depth[e["uid"]] for e in r["deps"] if e["uid"] in depth), default=-1)
        depth[r["uid"]] = d
        columns.setdefault(d, []).append(r)
    box_w, box_h, col_w, row_h = 150, 26, 190, 36
    where: dict[str, tuple[float, float]] = {}
    for d, column in columns.items():
        for i, r in enumerate(column):
            where[r["uid"]] = (10 + d * col_w, 10 + i * row_h)
    width = 20 + len(columns) * col_w
    height = 20 + max(len(c) for c in columns.values()) * row_h
    out = [f'<svg class="graph" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img">']
    for r in records:
        x1, y1 = where[r["uid"]]
        for e in r["deps"]:
            if e["uid"] not in where:
                continue
            x0, y0 = where[e["uid"]]
            dash = ' stroke-dasharray="4 3"' if e["edge"] == "native" else ""
            mid = (x0 + box_w + x1) / 2
            out.append(
                f'<path d="M{x0 + box_w},{y0 + box_h / 2} C{mid},{y0 + box_h / 2} {mid},{y1 + box_h / 2} '
                f'{x1},{y1 + box_h / 2}" fill="none" stroke="#777"{dash}/>'
            )
    for r in records:
        x, y = where[r["uid"]]
        colour = COLOURS.get(r["state"], "#ccc")
        out.append(
            f'<g class="node" data-uid="{html.escape(r["uid"])}"><rect x="{x}" y="{y}" rx="5" width="{box_w}" '
            f'height="{box_h}" fill="{colour}" stroke="#555"/><text x="{x + 6}" y="{y + 11}">'
            f'{html.escape(_one_line(r["name"], 22))}</text><text x="{x + 6}" y="{y + 22}" fill="#555">'
            f"{html.escape(r['uid'])} {r['state']}</text><title>{html.escape(_info(r))}</title></g>"
        )
    out.append("</svg>")
    return "\n".join(out)


def _label(r: dict[str, Any]) -> str:
    if r["kind"] == "block":
        return "driver"
    return r["route"] if r["route"] == r["backend"] else f"{r['route']} ({r['backend']})"


def _tip(r: dict[str, Any], a: dict[str, Any]) -> str:
    end = a["ended"] if a["ended"] is not None else r.get("ended")
    took = f", {(end - a['submitted']) * 1e3:.1f} ms" if end is not None else ""
    tip = f"{r['uid']} {r['name']} attempt {a['number']}: {a['outcome'] or 'RUNNING'}{took}"
    if a.get("started") is not None and a.get("finished") is not None:
        tip += f"; ran {(a['finished'] - a['started']) * 1e3:.1f} ms"
    if a.get("where"):
        tip += f" on {a['where']}"
    if a["error_type"]:
        tip += f" ({a['error_type']}: {_one_line(a['error_message'] or '', 150)})"
    return tip


def _info(r: dict[str, Any]) -> str:
    deps = ", ".join(d["uid"] + (" (native)" if d["edge"] == "native" else "") for d in r["deps"]) or "none"
    lines = [f"{r['uid']} {r['name']} ({r['kind']}) on {_label(r)}: {r['state']}", f"depends on: {deps}"]
    for a in r["attempts"]:
        lines.append("  " + _tip(r, a))
    if r.get("error_type"):
        lines.append(f"error: {r['error_type']}: {_one_line(r.get('error_message') or '', 300)}")
    if r.get("root_task"):
        root = f"{r.get('root_type')}: {_one_line(r.get('root_message') or '', 300)}"
        lines.append(f"root cause: {r['root_task']}: {root}")
    return "\n".join(lines)


def _failures(report: Report) -> str:
    failures = report.failures()
    if not failures:
        return "<p>None.</p>"
    rows = ["<table><tr><th>task</th><th>backend</th><th>error</th><th>failed because of it</th></tr>"]
    for root, because in failures:
        error = f"{root.error_type}: {root.error_message}" if root.error_type else ""
        names = ", ".join(f"{r.uid} ({r.name})" for r in because[:20]) + (" ..." if len(because) > 20 else "")
        rows.append(
            f"<tr><td>{html.escape(f'{root.uid} ({root.name})')}</td><td>{html.escape(_backend_label(root))}</td>"
            f"<td><code>{html.escape(_one_line(error, 500))}</code></td><td>{html.escape(names)}</td></tr>"
        )
    rows.append("</table>")
    return "\n".join(rows)
