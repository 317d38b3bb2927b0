"""mkdocs hook: the docs' pictures are made by running an example during the build, never kept in git.

``examples/report_figures.py`` writes its report page and dependency graph;
headless Chromium takes a screenshot of the page. The files are added to the
site as ``images/report.png`` and ``images/graph.svg`` (docs/records.md shows
them). Needs Debian's ``chromium`` and ``graphviz`` (scripts/test-all.sh
installs both); without them the build fails, naming them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

ROOT = Path(__file__).resolve().parent.parent
_made: dict[str, Path] = {}


def _make(out: Path) -> None:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None or shutil.which("dot") is None:
        raise PluginError("the docs' figures need headless Chromium and graphviz: apt-get install chromium graphviz")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWBRIDGE_")}
    run = subprocess.run(
        [sys.executable, "-m", "flowbridge", "run", str(ROOT / "examples" / "report_figures.py"), "--", str(out)],
        cwd=out, env=env, capture_output=True, text=True, timeout=120,
    )
    if run.returncode != 0 or not (out / "report.html").exists():
        raise PluginError(f"examples/report_figures.py failed:\n{run.stdout[-1500:]}{run.stderr[-1500:]}")
    shot = subprocess.run(
        [
            chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", f"--user-data-dir={out}/c",
            "--window-size=1300,1050", f"--screenshot={out / 'report.png'}", (out / "report.html").as_uri(),
        ],
        env={**env, "TMPDIR": str(out)}, capture_output=True, text=True, timeout=120,
    )
    if not (out / "report.png").exists():
        raise PluginError(f"Chromium made no screenshot of the report: {shot.stderr[-1500:]}")
    _made.update({"images/report.png": out / "report.png", "images/graph.svg": out / "graph.svg"})


def on_files(files: Files, config: Any) -> Files:
    if not _made:
        out = Path(tempfile.mkdtemp(prefix="flowbridge-docs-"))
        _make(out)
    for uri, path in _made.items():
        files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files


def on_post_build(config: Any) -> None:
    """The figures were copied into the site: their temporary directory goes."""
    for path in {p.parent for p in _made.values()}:
        shutil.rmtree(path, ignore_errors=True)
    _made.clear()
