"""`flowbridge compare`: the same workflow script on several profiles, side by side."""

from __future__ import annotations

import json
import os
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
        stats_file = Path(tmp) / "stats.jsonl"
        env = {**os.environ, ENV_STATS: str(stats_file), "FLOWBRIDGE_PROFILE": profile}
        start = time.perf_counter()
        try:
            proc = subprocess.run(
                [sys.executable, "-m", "flowbridge", "run", script, *args],
                env=env, capture_output=True, text=True, timeout=timeout,
            )
            returncode, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
        except subprocess.TimeoutExpired as exc:
            returncode, stdout, stderr = None, str(exc.stdout or ""), f"timed out after {timeout} s"
        wall = time.perf_counter() - start
        engines = [json.loads(line) for line in stats_file.read_text().splitlines()] if stats_file.exists() else []
    return {
        "profile": profile,
        "returncode": returncode,
        "wall_s": round(wall, 3),
        "stdout": stdout,
        "stderr_tail": stderr[-2000:],
        "engines": engines,
    }


def _first(values: list[Any]) -> Any:
    return next((v for v in values if v is not None), None)


def ran_on(result: dict[str, Any], expected: str | None) -> str:
    """The backends that really ran the row's engines, flagged when the profile's backend is not among them."""
    engines = result["engines"]
    if not engines:
        return "- (no engine ran)"
    where = "; ".join(dict.fromkeys(w for e in engines for w in e.get("where", e["backends"])))
    if expected is not None and not any(e["backends"] and e["backends"][0] == expected for e in engines):
        where += f"  [profile backend {expected!r} did NOT run]"
    return where


def table(results: list[dict[str, Any]]) -> str:
    """One row per profile: success, same stdout as the first, wall time, start-up, makespan, tasks/s, ran on."""
    head = (
        f"{'profile':<16}{'ok':>4}{'same out':>10}{'wall s':>9}{'start-up s':>12}"
        f"{'makespan s':>12}{'tasks':>7}{'tasks/s':>9}  ran on"
    )
    lines = [head, "-" * len(head)]
    reference = results[0]["stdout"] if results else ""
    for r in results:
        engines = r["engines"]
        startup = _first([e["startup_s"] for e in engines])
        makespan = sum(e["makespan_s"] or 0 for e in engines) if engines else None
        tasks = sum(e["tasks"] for e in engines)
        rate = tasks / makespan if makespan else None

        def cell(v: Any, width: int, fmt: str = ".3f") -> str:
            return f"{v:>{width}{fmt}}" if isinstance(v, float) else f"{'-' if v is None else v:>{width}}"

        lines.append(
            f"{r['profile']:<16}{'yes' if r['returncode'] == 0 else 'NO':>4}"
            f"{'yes' if r['stdout'] == reference else 'no':>10}{cell(r['wall_s'], 9)}{cell(startup, 12)}"
            f"{cell(makespan, 12)}{tasks:>7}{cell(rate, 9, '.1f')}  {r['ran_on']}"
        )
    return "\n".join(lines)


def compare(script: str, profiles: list[str], args: list[str], json_path: str | None, timeout: float | None) -> int:
    from ._config import profile

    results = [run_profile(script, p, args, timeout) for p in profiles]
    for r in results:
        r["ran_on"] = ran_on(r, profile(r["profile"])[0])
    print(table(results))
    for r in results:
        if r["returncode"] != 0:
            print(f"\n{r['profile']} failed (exit {r['returncode']}):\n{r['stderr_tail']}", file=sys.stderr)
    if json_path:
        Path(json_path).write_text(json.dumps(results, indent=2))
    return 0 if all(r["returncode"] == 0 for r in results) else 1
