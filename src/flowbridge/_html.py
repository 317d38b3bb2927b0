"""``Report.to_html``: one self-contained HTML file (inline CSS and SVG, no script, no network)."""

from __future__ import annotations

import html
import time
from typing import TYPE_CHECKING

from ._graph import COLOURS
from ._report import _backend_label, _lane, _one_line

if TYPE_CHECKING:
    from ._report import Report

#: bars drawn at most; the rest are counted in a note (the JSON and trace files have them all)
MAX_BARS = 5000
WIDTH = 1000  # px of the time axis
LEFT = 180  # px for the lane labels


def render(report: Report) -> str:
    title = f"flowbridge report {report.name}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title>",
        "<style>",
        "body{font-family:Helvetica,Arial,sans-serif;margin:1.5em;color:#222}",
        "pre{background:#f6f6f6;padding:.8em;overflow-x:auto}",
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25em .5em;text-align:left;"
        "vertical-align:top}",
        ".legend span{display:inline-block;padding:.1em .6em;margin-right:.4em;border:1px solid #888}",
        "svg text{font-size:11px}",
        "</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p>Written {html.escape(time.strftime('%Y-%m-%d %H:%M:%S'))}. Bars span an attempt from its hand-over "
        "to the backend to its end, as the driver saw it (time queued on the backend included).</p>",
        "<h2>Summary</h2>",
        f"<pre>{html.escape(report.summary())}</pre>",
        "<h2>Timeline</h2>",
        '<p class="legend">'
        + "".join(f'<span style="background:{c}">{html.escape(s)}</span>' for s, c in COLOURS.items())
        + "</p>",
        _timeline(report),
        "<h2>Failures</h2>",
        _failures(report),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _timeline(report: Report) -> str:
    spans = sorted(
        ((a.submitted_perf, r, a) for r in report.tasks for a in r.attempts), key=lambda item: (item[0], item[1].uid)
    )
    if not spans:
        return "<p>No task was handed to a backend.</p>"
    shown = spans[:MAX_BARS]
    t0 = min(r.created_perf for r in report.tasks)
    ends = [a.ended_perf for _, _, a in shown if a.ended_perf is not None]
    t1 = max([*ends, *(s for s, _, _ in shown)])
    scale = WIDTH / max(t1 - t0, 1e-9)
    lanes: dict[str, list[tuple[float, int]]] = {}
    placed = []
    for start, r, a in shown:
        end = a.ended_perf if a.ended_perf is not None else t1
        label = _backend_label(r)
        placed.append((label, _lane(lanes.setdefault(label, []), start, end), start, end, r, a))
    offsets, y = {}, 0
    for label, heap in lanes.items():
        offsets[label] = y
        y += len(heap)
    total_lanes = y
    row = 14 if total_lanes <= 60 else max(2, 840 // total_lanes)
    height = total_lanes * row + 30
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{LEFT + WIDTH + 20}" height="{height}" role="img">']
    for label, first in offsets.items():
        out.append(
            f'<text x="4" y="{first * row + 11}">{html.escape(label)} ({len(lanes[label])} lane(s))</text>'
            f'<line x1="{LEFT}" x2="{LEFT + WIDTH}" y1="{first * row}" y2="{first * row}" stroke="#bbb"/>'
        )
    for label, lane, start, end, r, a in placed:
        x = LEFT + (start - t0) * scale
        w = max(1.0, (end - start) * scale)
        top = (offsets[label] + lane - 1) * row
        colour = COLOURS.get(a.outcome or "RUNNING", "#ccc")
        tip = f"{r.uid} {r.name} attempt {a.number}: {a.outcome or 'RUNNING'}, {(end - start) * 1e3:.1f} ms"
        if a.error_type:
            tip += f" ({a.error_type}: {_one_line(a.error_message or '', 150)})"
        out.append(
            f'<rect class="bar" x="{x:.1f}" y="{top + 1}" width="{w:.1f}" height="{max(1, row - 2)}" '
            f'fill="{colour}" stroke="#555" stroke-width="0.3"><title>{html.escape(tip)}</title></rect>'
        )
    base = total_lanes * row + 14
    span = t1 - t0
    for i in range(6):
        x = LEFT + WIDTH * i / 5
        out.append(f'<text x="{x:.0f}" y="{base + 10}" text-anchor="middle">{span * i / 5:.3g} s</text>')
    out.append("</svg>")
    if len(spans) > MAX_BARS:
        out.append(f"<p>{len(spans) - MAX_BARS} more attempt(s) not drawn; to_chrome_trace() has them all.</p>")
    return "\n".join(out)


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
