"""`flowbridge compare`: the same workflow script on several profiles, side by side.

Each run is a fresh interpreter (``flowbridge run --report``), so the profiles
cannot disturb one another; what it printed, the engine's figures (through
``FLOWBRIDGE_STATS``) and its task records (the report JSON) come back. The
table gives per profile the backend that really ran, start-up, makespan,
tasks/s, submit-to-start latency, failures and whether the output agrees with
the first profile's (a diff when it does not); ``--html`` draws the runs'
timelines one above the other on one time axis.
"""

from __future__ import annotations

import difflib
import glob
import html
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from ._stats import ENV_STATS


def run_profile(script: str, profile: str, args: list[str], timeout: float | None) -> dict[str, Any]:
    """Run the script once on a profile, in a fresh interpreter; collect what the engine recorded."""
    with tempfile.TemporaryDirectory(prefix="flowbridge-compare-") as tmp:
        stats_file, report_file = Path(tmp) / "stats.jsonl", Path(tmp) / "report.json"
        env = {**os.environ, ENV_STATS: str(stats_file), "FLOWBRIDGE_PROFILE": profile}
        command = [sys.executable, "-m", "flowbridge", "run", "--report", str(report_file), script, "--", *args]
        start = time.perf_counter()
        try:
            proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
            returncode, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
        except subprocess.TimeoutExpired as exc:
            returncode, stdout, stderr = None, _text(exc.stdout), f"timed out after {timeout} s"
        wall = time.perf_counter() - start
        engines = [json.loads(line) for line in stats_file.read_text().splitlines()] if stats_file.exists() else []
        tasks = []  # the first engine's report at report.json, others' at report.<engine uid>.json
        for path in [str(report_file), *sorted(glob.glob(os.path.join(tmp, "report.*.json")))]:
            if os.path.exists(path):
                tasks.extend(json.loads(Path(path).read_text())["tasks"])
    stderr = "\n".join(line for line in stderr.splitlines() if not line.startswith("flowbridge: report written to"))
    return {
        "profile": profile,
        "returncode": returncode,
        "wall_s": round(wall, 3),
        "stdout": stdout,
        "stderr_tail": stderr[-2000:],
        "engines": engines,
        "tasks": tasks,
    }


def _text(out: str | bytes | None) -> str:
    return out.decode(errors="replace") if isinstance(out, bytes) else (out or "")


def _first(values: list[Any]) -> Any:
    return next((v for v in values if v is not None), None)


def _median(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None


def ran_on(run: dict[str, Any], expected: str | None) -> str:
    """The backends that really ran the run's engines, flagged when the profile's backend is not among them."""
    engines = run["engines"]
    if not engines:
        return "- (no engine ran)"
    where = "; ".join(dict.fromkeys(w for e in engines for w in e.get("where", e["backends"])))
    if expected is not None and not any(e["backends"] and e["backends"][0] == expected for e in engines):
        where += f"  [profile backend {expected!r} did NOT run]"
    return where


def figures(run: dict[str, Any]) -> dict[str, Any]:
    """One run's figures: start-up, makespan, tasks, tasks/s, submit-to-start latency (p50), failed tasks."""
    engines = run["engines"]
    makespan = sum(e["makespan_s"] or 0 for e in engines) if engines else None
    tasks = sum(e["tasks"] for e in engines)
    waits = sorted(
        a["started"] - a["submitted"] for r in run["tasks"] for a in r["attempts"] if a.get("started") is not None
    )
    return {
        "startup_s": _first([e["startup_s"] for e in engines]),
        "makespan_s": makespan,
        "tasks": tasks,
        "tasks_per_s": tasks / makespan if makespan else None,
        "latency_p50_s": statistics.median(waits) if waits else None,
        "failed": sum(1 for r in run["tasks"] if r["state"] == "FAILED"),
    }


def summarise(profile: str, runs: list[dict[str, Any]], reference: str, expected: str | None) -> dict[str, Any]:
    """A profile's row: its runs' median figures, whether every run succeeded and printed the reference."""
    each = [figures(r) for r in runs]
    row: dict[str, Any] = {
        "profile": profile,
        "ok": all(r["returncode"] == 0 for r in runs),
        "same_output": all(r["stdout"] == reference for r in runs),
        "wall_s": _median([r["wall_s"] for r in runs]),
        **{key: _median([f[key] for f in each]) for key in ("startup_s", "makespan_s", "tasks_per_s", "latency_p50_s")},
        "tasks": each[-1]["tasks"],
        "failed": max(f["failed"] for f in each),
        "ran_on": ran_on(runs[-1], expected),
        "runs": runs,
    }
    return row


def table(rows: list[dict[str, Any]]) -> str:
    """One row per profile: success, same output as the first, then the figures (medians over the runs)."""
    head = (
        f"{'profile':<16}{'ok':>4}{'same out':>10}{'wall s':>9}{'start-up s':>12}{'makespan s':>12}"
        f"{'tasks':>7}{'tasks/s':>9}{'start lat':>11}{'failed':>8}  ran on"
    )
    lines = [head, "-" * len(head)]

    def cell(v: Any, width: int, fmt: str = ".3f") -> str:
        return f"{v:>{width}{fmt}}" if isinstance(v, float) else f"{'-' if v is None else v:>{width}}"

    for r in rows:
        latency = None if r["latency_p50_s"] is None else f"{r['latency_p50_s'] * 1e3:.1f}ms"
        lines.append(
            f"{r['profile']:<16}{'yes' if r['ok'] else 'NO':>4}{'yes' if r['same_output'] else 'no':>10}"
            f"{cell(r['wall_s'], 9)}{cell(r['startup_s'], 12)}{cell(r['makespan_s'], 12)}{r['tasks']:>7}"
            f"{cell(r['tasks_per_s'], 9, '.1f')}{cell(latency, 11)}{r['failed']:>8}  {r['ran_on']}"
        )
    repeats = len(rows[0]["runs"]) if rows else 1
    if repeats > 1:
        lines.append(f"(medians of {repeats} runs per profile; start lat: submit to start on the worker, p50)")
    return "\n".join(lines)


def diffs(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """(title, unified diff) for each run whose output differs from the first profile's first run."""
    if not rows:
        return []
    reference, first = rows[0]["runs"][0]["stdout"], rows[0]["profile"]
    out = []
    for r in rows:
        seen: dict[str, list[int]] = {}  # a profile's runs that printed the same thing share one diff
        for i, run in enumerate(r["runs"]):
            if run["stdout"] != reference:
                seen.setdefault(run["stdout"], []).append(i + 1)
        for stdout, numbers in seen.items():
            name = r["profile"]
            if len(r["runs"]) > 1:
                name += f" (run{'s' if len(numbers) > 1 else ''} {', '.join(map(str, numbers))})"
            lines = list(difflib.unified_diff(reference.splitlines(), stdout.splitlines(), first, name, lineterm=""))
            text = "\n".join(lines[:60]) + (f"\n... {len(lines) - 60} more line(s)" if len(lines) > 60 else "")
            out.append((f"output of {name} differs from {first}'s", text))
    return out


def compare(
    script: str,
    profiles: list[str],
    args: list[str],
    json_path: str | None,
    timeout: float | None,
    repeat: int = 1,
    html_path: str | None = None,
) -> int:
    from ._config import profile

    runs = {p: [run_profile(script, p, args, timeout) for _ in range(repeat)] for p in profiles}
    reference = runs[profiles[0]][0]["stdout"]
    rows = [summarise(p, runs[p], reference, profile(p)[0]) for p in profiles]
    print(table(rows))
    for title, text in diffs(rows):
        print(f"\n{title}:\n{text}")
    for r in rows:
        for run in r["runs"]:
            if run["returncode"] != 0:
                print(f"\n{r['profile']} failed (exit {run['returncode']}):\n{run['stderr_tail']}", file=sys.stderr)
    if json_path:
        Path(json_path).write_text(json.dumps(rows, indent=1))
    if html_path:
        Path(html_path).write_text(page(script, rows))
    return 0 if all(r["ok"] for r in rows) else 1


def page(script: str, rows: list[dict[str, Any]]) -> str:
    """The comparison as one offline HTML page: the table, the diffs, and every profile's timeline on one axis."""
    from . import _html

    timeline = _html.Timeline([(r["profile"], r["runs"][-1]["tasks"][: _html.MAX_BARS]) for r in rows])
    title = f"flowbridge compare {os.path.basename(script)}"
    parts = [
        *_html._head(title),
        f"<h1>{html.escape(title)}</h1>",
        f"<p>Written {html.escape(time.strftime('%Y-%m-%d %H:%M:%S'))}; profiles: "
        f"{html.escape(', '.join(r['profile'] for r in rows))}.</p>",
        f"<pre>{html.escape(table(rows))}</pre>",
        *(f"<h2>{html.escape(t)}</h2><pre>{html.escape(d)}</pre>" for t, d in diffs(rows)),
        "<h2>Timelines</h2>",
        "<p>Each profile's last run, its time counted from its own first task's call.</p>",
        _html.TIMELINE_HELP,
        timeline.controls(),
        timeline.svg(),
        *_html._tail(timeline),
    ]
    return "\n".join(parts) + "\n"
