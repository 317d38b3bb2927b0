"""What ran: a small pipeline with a retry and a failure, then its report, timeline and graph.

    flowbridge run examples/report_figures.py            # prints the summary and the graph (Mermaid)
    flowbridge run examples/report_figures.py -- OUTDIR  # also writes report.html, trace.json, graph.svg there

The docs build runs it with an OUTDIR and shows the page and the graph it writes
(see docs/records.md).
"""

import asyncio
import shutil
import sys
import time
from pathlib import Path

from flowbridge import WorkflowEngine

out = Path(sys.argv[1]) if len(sys.argv) > 1 else None
flow = WorkflowEngine(uid="report-demo")


@flow.function_task
def fetch(part: int) -> list[int]:
    time.sleep(0.05 + 0.02 * part)
    return list(range(part * 10, part * 10 + 10))


@flow.function_task
def clean(rows: list[int]) -> list[int]:
    time.sleep(0.04)
    return [r for r in rows if r % 3]


@flow.function_task(retries=1)
def flaky_total(*parts: list[int]) -> int:
    """Fails on its first attempt, as a lost worker would; the retry succeeds."""
    time.sleep(0.03)
    if not any(r.name == "flaky_total" and len(r.attempts) > 1 for r in flow.records):
        raise ConnectionError("worker went away")
    return sum(map(sum, parts))


@flow.function_task
def publish(total: int) -> str:
    raise PermissionError(f"cannot write {total} to the archive")


async def main() -> None:
    async with flow:
        parts = [clean(fetch(i)) for i in range(4)]
        total = flaky_total(*parts)
        done = publish(total)
        print("total =", await total)
        await asyncio.gather(done, return_exceptions=True)
    report = flow.report()
    print(report.summary())
    if out is None:
        print(flow.graph().to_mermaid())
        return
    out.mkdir(parents=True, exist_ok=True)
    report.to_html(out / "report.html")
    report.to_chrome_trace(out / "trace.json")
    if shutil.which("dot"):
        flow.graph().render(out / "graph.svg")
    print("written to", out)


asyncio.run(main())
