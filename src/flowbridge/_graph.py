"""``flow.graph()``: the dependency graph of the tasks called so far, as DOT, Mermaid or an image.

Read from the task records: a node per task (its state as colour), an edge per
dependency found in its arguments (solid: the value was passed; dashed: the
framework's own handle, a native dependency), and the tasks a block called
drawn inside that block. Nothing has to have run: the edges are known when a
task is called, so it works on ``WorkflowEngine(dry_run=True)`` too.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence

from ._errors import FlowbridgeError
from ._record import TaskRecord

#: fill colour per state, shared with the HTML report
COLOURS = {
    "PENDING": "#d9d9d9",
    "RUNNING": "#9ecae1",
    "DONE": "#a1d99b",
    "FAILED": "#fc9272",
    "CANCELLED": "#fdd49e",
}


class GraphvizNotFound(FlowbridgeError, FileNotFoundError):
    """``Graph.render`` needs graphviz's ``dot`` program, which is not installed."""


class Graph:
    """The tasks (nodes) and their dependencies (edges), from their records."""

    def __init__(self, tasks: Sequence[TaskRecord]) -> None:
        self.tasks = list(tasks)
        known = {r.uid for r in self.tasks}
        #: (upstream uid, downstream uid, "value" or "native")
        self.edges: list[tuple[str, str, str]] = [
            (uid, r.uid, edge) for r in self.tasks for uid, edge in r.deps if uid in known
        ]

    def __repr__(self) -> str:
        return f"<Graph {len(self.tasks)} task(s), {len(self.edges)} edge(s)>"

    def _children(self) -> dict[str | None, list[TaskRecord]]:
        """Tasks by the block that called them (None: called outside any block)."""
        known = {r.uid for r in self.tasks}
        out: dict[str | None, list[TaskRecord]] = {}
        for r in self.tasks:
            out.setdefault(r.parent if r.parent in known else None, []).append(r)
        return out

    def to_dot(self) -> str:
        """Graphviz DOT text: ``dot -Tsvg`` draws it."""
        children = self._children()
        lines = [
            "digraph flowbridge {",
            "  rankdir=LR;",
            '  node [shape=box, style="rounded,filled", fontname="Helvetica", fontsize=10];',
            '  edge [fontname="Helvetica", fontsize=9];',
        ]

        def emit(parent: str | None, indent: str) -> None:
            for r in children.get(parent, []):
                if r.uid in children:  # a block that called tasks: a cluster holding them
                    lines.append(f"{indent}subgraph {_dot_id('cluster_' + r.uid)} {{")
                    lines.append(f'{indent}  label={_dot_str(_label(r))}; style="rounded,dashed";')
                    lines.append(f"{indent}  {_dot_node(r)}")
                    emit(r.uid, indent + "  ")
                    lines.append(f"{indent}}}")
                else:
                    lines.append(f"{indent}{_dot_node(r)}")

        emit(None, "  ")
        for up, down, edge in self.edges:
            style = ' [style=dashed, label="native"]' if edge == "native" else ""
            lines.append(f"  {_dot_id(up)} -> {_dot_id(down)}{style};")
        lines.append("}")
        return "\n".join(lines) + "\n"

    def to_mermaid(self) -> str:
        """Mermaid flowchart text (GitHub and mkdocs-material render it in a ``mermaid`` fence)."""
        children = self._children()
        lines = ["flowchart LR"]

        def emit(parent: str | None, indent: str) -> None:
            for r in children.get(parent, []):
                node = f'{indent}{_mermaid_id(r.uid)}["{_mermaid_text(_label(r))}"]:::{r.state.value.lower()}'
                if r.uid in children:
                    lines.append(f'{indent}subgraph {_mermaid_id("in_" + r.uid)}["{_mermaid_text(_label(r))}"]')
                    lines.append("  " + node)
                    emit(r.uid, indent + "  ")
                    lines.append(f"{indent}end")
                else:
                    lines.append(node)

        emit(None, "  ")
        for up, down, edge in self.edges:
            arrow = "-. native .->" if edge == "native" else "-->"
            lines.append(f"  {_mermaid_id(up)} {arrow} {_mermaid_id(down)}")
        for state, colour in COLOURS.items():
            lines.append(f"  classDef {state.lower()} fill:{colour},stroke:#555")
        return "\n".join(lines) + "\n"

    def render(self, path: str | os.PathLike[str], format: str | None = None) -> str:
        """Draw the graph to ``path`` with graphviz's ``dot``: PNG or SVG, from the suffix or ``format``.

        Returns the path. Raises :class:`GraphvizNotFound` when ``dot`` is not
        installed, naming the package that provides it.
        """
        fmt = (format or os.path.splitext(os.fspath(path))[1].lstrip(".")).lower()
        if fmt not in ("png", "svg"):
            raise ValueError(f"Graph.render({os.fspath(path)!r}): give a .png or .svg path, or format='png'/'svg'")
        dot = shutil.which("dot")
        if dot is None:
            raise GraphvizNotFound(
                "Graph.render needs graphviz's `dot` program, which is not on PATH: install graphviz "
                "(Debian/Ubuntu: `apt-get install graphviz`; conda: `conda install graphviz`; macOS: "
                "`brew install graphviz`), or write the text with to_dot() / to_mermaid()"
            )
        proc = subprocess.run(
            [dot, f"-T{fmt}", "-o", os.fspath(path)], input=self.to_dot().encode(), capture_output=True, timeout=120
        )
        if proc.returncode != 0:
            raise FlowbridgeError(f"dot failed (exit {proc.returncode}): {proc.stderr.decode(errors='replace')[-500:]}")
        return os.fspath(path)


def _label(r: TaskRecord) -> str:
    return f"{r.name}\n{r.uid} {r.state.value}"


def _dot_str(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _dot_id(uid: str) -> str:
    return _dot_str(uid)


def _dot_node(r: TaskRecord) -> str:
    shape = ", shape=box3d" if r.kind == "block" else (", shape=note" if r.kind == "executable" else "")
    return f"{_dot_id(r.uid)} [label={_dot_str(_label(r))}, fillcolor={_dot_str(COLOURS[r.state.value])}{shape}];"


def _mermaid_id(uid: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in uid)


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;").replace("\n", "<br/>")
