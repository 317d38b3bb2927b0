"""The documentation builds with `mkdocs build --strict`, and the code it marks runnable runs.

Convention: a fenced ```python block whose first line is ``# runnable`` is run as its own
script with ``python -m flowbridge run`` (so top-level ``await`` works) in an empty working
directory.
A fenced block of any language whose first line is ``# file: NAME`` is written to NAME in
that directory first, for every runnable block of the same page (config files).
A runnable block asserts what the page claims, so the page and the code cannot drift apart.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
# Pages owned by the adapter engineers (docs/adapters/{dask,parsl,radical}.md) are built,
# not run: their examples need the frameworks those adapters drive.
PAGES = [
    "index.md",
    "guide.md",
    "backends.md",
    "resources.md",
    "errors.md",
    "asyncflow.md",
    "adapters/concurrent.md",
    "records.md",
]
FENCE = re.compile(r"^```(\w*)[^\n]*\n(.*?)^```[ \t]*$", re.M | re.S)
RUNNABLE = "# runnable"
FILE = re.compile(r"#\s*file:\s*(\S+)\s*$")


def blocks(page: str) -> tuple[list[str], dict[str, str]]:
    """The runnable python blocks of a page and its files (name -> text)."""
    runnable: list[str] = []
    files: dict[str, str] = {}
    for lang, body in FENCE.findall((DOCS / page).read_text()):
        first = body.split("\n", 1)[0]
        if lang == "python" and first.rstrip() == RUNNABLE:
            runnable.append(body)
        elif m := FILE.fullmatch(first):
            files[m.group(1)] = body
    return runnable, files


CASES = [(page, i) for page in PAGES for i in range(len(blocks(page)[0]))]


def test_enough_runnable_guide_snippets():
    assert len(blocks("guide.md")[0]) >= 4


def test_mkdocs_build_strict(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "-q",
            "-f",
            str(ROOT / "mkdocs.yml"),
            "-d",
            str(tmp_path / "site"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=110,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert (tmp_path / "site" / "guide" / "index.html").is_file()
    # the figures of records.md, made by running examples/report_figures.py during the build
    png = (tmp_path / "site" / "images" / "report.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 20_000
    assert "<svg" in (tmp_path / "site" / "images" / "graph.svg").read_text()


@pytest.mark.parametrize(("page", "index"), CASES, ids=[f"{p}#{i + 1}" for p, i in CASES])
def test_runnable_snippet(page, index, tmp_path):
    runnable, files = blocks(page)
    code = runnable[index]
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    for name, text in files.items():
        (cwd / name).write_text(text)
    script = tmp_path / "snippet.py"
    script.write_text(code)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWBRIDGE_")}
    env.update(
        PYTHONUNBUFFERED="1",
        FLOWBRIDGE_RUN_DIR=str(tmp_path / "runs"),
    )
    result = subprocess.run(
        [sys.executable, "-m", "flowbridge", "run", str(script)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert result.returncode == 0, f"{page} block {index + 1}:\n{result.stdout[-3000:]}{result.stderr[-3000:]}"
    left = sorted(p.name for p in cwd.iterdir() if p.name not in files)
    assert left == [], f"{page} block {index + 1} left files in the working directory: {left}"


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_adapter_example_passes_the_conformance_suite(tmp_path):
    """The complete adapter of adapter-contract.md, with its test file, passes the conformance cases."""
    _, files = blocks("adapter-contract.md")
    assert {"flowbridge_subprocess.py", "test_subprocess_backend.py"} <= set(files)
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWBRIDGE_")}
    env.update(PYTHONPATH=str(tmp_path), FLOWBRIDGE_RUN_DIR=str(tmp_path / "runs"))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-W",
            "ignore::DeprecationWarning",
            "test_subprocess_backend.py",
            # 200 tasks of one fresh interpreter each take minutes on 2 cores; every other case runs
            "-k",
            "not test_many_tasks",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=850,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and "failed" not in result.stdout and "skipped" not in result.stdout
    assert list((tmp_path / "runs").iterdir()) == [], "the adapter left its run directory behind"


ADAPTERS = ["concurrent", "dask", "executorlib", "parsl", "radical"]  # docs/adapters/<name>.md


@pytest.mark.parametrize("name", ADAPTERS)
def test_adapter_page_states_what_the_class_declares(name: str) -> None:
    """Each adapter page's capabilities and supported-resources rows say what its class declares."""
    from flowbridge._registry import load
    from flowbridge._resources import FIELDS

    cls = load(name)
    text = (DOCS / "adapters" / f"{name}.md").read_text()
    rows = dict(re.findall(r"^\| (capabilities|supported resources) \|(.*)\|$", text, re.M))
    assert set(re.findall(r"`([\w.]+)`", rows["capabilities"])) == set(cls.capabilities)
    named = set(re.findall(r"`(\w+)`", rows["supported resources"])) & {*FIELDS, "extra"}
    assert named == set(cls.supported_resources)
