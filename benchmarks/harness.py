"""One harness for every benchmark: time side by side in one process, report ratios.

Absolute times drift on a shared machine; ratios taken in the same run hold. Each
benchmark script builds a list of cases, runs each contender with :func:`best_of`
(alternating contenders between repeats), then prints one table with
:func:`report`, which also writes JSON when ``--json PATH`` is given and returns
a non-zero exit status when ``--check`` is given and a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import inspect
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Case:
    """One workload: contenders by label, and the target ratio of ``subject`` over ``baseline``."""

    name: str
    baseline: str
    subject: str
    limit: float | None = None  # subject / baseline must be <= limit
    seconds: dict[str, float] = field(default_factory=dict)
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.baseline in self.seconds and self.subject in self.seconds and self.seconds[self.baseline] > 0:
            return self.seconds[self.subject] / self.seconds[self.baseline]
        return None

    @property
    def ok(self) -> bool | None:
        if self.limit is None or self.ratio is None:
            return None
        return self.ratio <= self.limit


def parse_args(description: str, argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--repeat", type=int, default=3, help="runs per contender; the best counts")
    parser.add_argument("--quick", action="store_true", help="smaller workloads (for smoke tests)")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target ratio is missed")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    return parser.parse_args(argv)


async def _time_once(fn: Callable[[], Any]) -> float:
    gc.collect()
    start = time.perf_counter()
    result = fn()
    if inspect.isawaitable(result):
        await result
    return time.perf_counter() - start


async def best_of(contenders: dict[str, Callable[[], Any]], repeat: int) -> dict[str, float]:
    """Best wall time of each contender, interleaving them so drift hits all alike."""
    best = {label: float("inf") for label in contenders}
    for _ in range(repeat):
        for label, fn in contenders.items():
            best[label] = min(best[label], await _time_once(fn))
    return best


def report(title: str, cases: list[Case], args: argparse.Namespace) -> int:
    """Print the table; write JSON if asked; return the exit status."""
    labels: list[str] = []
    for case in cases:
        labels += [label for label in case.seconds if label not in labels]
    width = max(len(c.name) for c in cases) + 2
    print(f"\n{title}")
    header = f"{'workload':<{width}}" + "".join(f"{label:>22}" for label in labels) + f"{'ratio':>9}{'target':>9}  ok"
    print(header)
    print("-" * len(header))
    failed = False
    for case in cases:
        cells = "".join(f"{case.seconds[label]:>21.3f}s" if label in case.seconds else f"{'-':>22}" for label in labels)
        ratio = f"{case.ratio:>8.2f}x" if case.ratio is not None else f"{'-':>9}"
        limit = f"{case.limit:>8.2f}x" if case.limit is not None else f"{'-':>9}"
        verdict = {True: "yes", False: "NO", None: ""}[case.ok]
        failed |= case.ok is False
        print(f"{case.name:<{width}}{cells}{ratio}{limit}  {verdict}" + (f"  ({case.note})" if case.note else ""))
    print(f"ratio = {cases[0].subject} / {cases[0].baseline} unless the row says otherwise; best of {args.repeat}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(
                [
                    {
                        "name": c.name,
                        "seconds": c.seconds,
                        "baseline": c.baseline,
                        "subject": c.subject,
                        "ratio": c.ratio,
                        "limit": c.limit,
                        "ok": c.ok,
                        "note": c.note,
                    }
                    for c in cases
                ],
                fh,
                indent=2,
            )
    return 1 if (failed and args.check) else 0


#: A ``--quick`` run this long is hung: they take 5-60 s on a loaded 2-core machine (the tests wait 220-280 s).
QUICK_HANG_S = 200


def run(main: Callable[[argparse.Namespace], Any], description: str) -> None:
    """Entry point for a benchmark script: parse args, run ``main(args)``, exit with its status."""
    args = parse_args(description)
    if args.quick:  # a smoke run (the tests): a hang prints every thread's stack and exits, not just a timeout
        import faulthandler

        faulthandler.dump_traceback_later(QUICK_HANG_S, exit=True)
    status = main(args)
    if inspect.iscoroutine(status):
        status = asyncio.run(status)
    sys.exit(status or 0)
