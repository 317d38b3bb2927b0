"""The ``flowbridge`` command: run a workflow script on a profile, list backends."""

from __future__ import annotations

import argparse
import ast
import asyncio
import builtins
import inspect
import os
import sys
import types
from pathlib import Path


def run_script(path: str, argv: list[str]) -> None:
    """Run a script as ``__main__``; top-level ``await`` works, as in a notebook.

    Scripts written for Jupyter (the seeds' ``await ConcurrentExecutionBackend(...)``)
    run unchanged: with top-level awaits the whole module body runs as one
    coroutine on a fresh event loop; without, it runs as plain Python would.
    A top-level-await script has no ``__file__``, as in a notebook: worker
    processes started with ``spawn`` (Dask's LocalCluster) would otherwise
    re-run it as a module, where top-level ``await`` is a syntax error.
    """
    file = Path(path)
    if not file.is_file():
        raise SystemExit(f"flowbridge run: no such script: {path}")
    source = file.read_text()
    code = compile(source, str(file), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
    module = types.ModuleType("__main__")
    module.__dict__.update(__file__=str(file), __builtins__=builtins, __spec__=None)
    saved_main, saved_argv, saved_path0 = sys.modules["__main__"], sys.argv, sys.path[0]
    sys.modules["__main__"], sys.argv = module, [str(file), *argv]
    sys.path[0] = str(file.resolve().parent)
    if code.co_flags & inspect.CO_COROUTINE:
        del module.__dict__["__file__"]
    try:
        result = eval(code, module.__dict__)
        if inspect.iscoroutine(result):
            asyncio.run(result)
    finally:
        sys.modules["__main__"], sys.argv, sys.path[0] = saved_main, saved_argv, saved_path0


def _backends() -> int:
    from ._errors import BackendUnavailable
    from ._registry import load, names

    for name in names():
        try:
            cls = load(name)
            status = f"installed ({cls.__module__}.{cls.__qualname__})"
        except BackendUnavailable as exc:
            status = f"not installed: {exc}"
        print(f"{name:<12} {status}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="flowbridge", description="One asyncio front-end for workflows.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a workflow script (top-level await allowed)")
    run.add_argument("--profile", help="config profile to run on (sets FLOWBRIDGE_PROFILE)")
    run.add_argument("script")
    run.add_argument("args", nargs=argparse.REMAINDER)
    sub.add_parser("backends", help="list known backends and whether they are installed")
    cmp = sub.add_parser("compare", help="run one script on several profiles and compare them")
    cmp.add_argument("--profiles", required=True, help="comma-separated profile names")
    cmp.add_argument("--json", metavar="PATH", help="also write every run's figures and output as JSON")
    cmp.add_argument("--timeout", type=float, default=None, help="seconds allowed for each run")
    cmp.add_argument("script")
    cmp.add_argument("args", nargs=argparse.REMAINDER)
    ns = parser.parse_args(argv)
    if ns.command == "backends":
        return _backends()
    if ns.command == "compare":
        from ._compare import compare
        from ._config import profile

        names = [p.strip() for p in ns.profiles.split(",") if p.strip()]
        for name in names:
            profile(name)  # every profile must exist before anything runs
        return compare(ns.script, names, ns.args, ns.json, ns.timeout)
    if ns.profile:
        os.environ["FLOWBRIDGE_PROFILE"] = ns.profile
        from ._config import profile

        profile(ns.profile)  # fail now, with the fix, rather than inside the script
    run_script(ns.script, ns.args)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
