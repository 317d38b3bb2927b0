"""The ``flowbridge`` command: run a workflow script on a profile, list backends."""

from __future__ import annotations

import ast
import asyncio
import builtins
import inspect
import os
import sys
import types
from pathlib import Path
from typing import Any

USAGE = """usage: flowbridge run [--profile NAME] [--report PATH] [--progress] [--debug]
                      SCRIPT [ARGS...] [-- SCRIPT-ARGS...]
       flowbridge compare --profiles A,B[,...] [--repeat N] [--html PATH] [--json PATH] [--timeout S] [--debug]
                          SCRIPT [ARGS...]
       flowbridge backends [--check [NAME...]]
       flowbridge --version

run       run a workflow script (top-level await allowed), on a config profile if given;
          --report out.html (or .json) writes what ran at the end, also after a failure or Ctrl-C;
          --progress shows live task counts by state and backend (when stderr is a terminal)
compare   run one script on several profiles and compare them side by side: the backend that ran,
          start-up, makespan, tasks/s, start latency, failures, same output (a diff when not);
          --repeat N runs each N times (medians), --html out.html adds every profile's timeline
backends  list known backends and whether they are installed; --check starts each installed
          one (or those named) and runs one task on it: a health check, with timings

flowbridge's own options may stand before or after SCRIPT; arguments after `--`
go to the script untouched, as do plain (non-option) arguments after SCRIPT."""

#: options of each command: name -> whether it takes a value
OPTIONS: dict[str, dict[str, bool]] = {
    "run": {"--profile": True, "--report": True, "--progress": False, "--debug": False},
    "compare": {
        "--profiles": True, "--repeat": True, "--html": True, "--json": True, "--timeout": True, "--debug": False,
    },
    "backends": {"--check": False, "--debug": False},
}


class UsageError(Exception):
    """A mistake on the command line: one line, the fix named, exit status 2."""


def run_script(path: str, argv: list[str], report: str | None = None) -> None:
    """Run a script as ``__main__``; top-level ``await`` works, as in a notebook.

    Scripts written for Jupyter (the seeds' ``await ConcurrentExecutionBackend(...)``)
    run unchanged: with top-level awaits the whole module body runs as one
    coroutine on a fresh event loop; without, it runs as plain Python would.
    A top-level-await script has no ``__file__``, as in a notebook: worker
    processes started with ``spawn`` (Dask's LocalCluster) would otherwise
    re-run it as a module, where top-level ``await`` is a syntax error.
    With ``report``, the records of every engine the script made are written
    there when it ends, however it ends (see :func:`write_reports`).
    """
    file = Path(path)
    if not file.is_file():
        raise UsageError(f"no such script: {path}")
    source = file.read_text()
    code = compile(source, str(file), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True)
    module = types.ModuleType("__main__")
    module.__dict__.update(__file__=str(file), __builtins__=builtins, __spec__=None)
    saved_main, saved_argv, saved_path0 = sys.modules["__main__"], sys.argv, sys.path[0]
    sys.modules["__main__"], sys.argv = module, [str(file), *argv]
    sys.path[0] = str(file.resolve().parent)
    if code.co_flags & inspect.CO_COROUTINE:
        del module.__dict__["__file__"]
    from . import _engine

    engines = _engine.track_engines() if report else None
    try:
        result = eval(code, module.__dict__)
        if inspect.iscoroutine(result):
            asyncio.run(_closing_engines(result))
    finally:
        sys.modules["__main__"], sys.argv, sys.path[0] = saved_main, saved_argv, saved_path0
        if engines is not None and report:
            _engine.stop_tracking()
            write_reports(report, engines)


def write_reports(path: str, engines: list[Any]) -> None:
    """The report of each engine that kept records: the first at ``path``, others beside it.

    A second engine's goes to ``out.<engine uid>.html``. Never raises: the
    script's own error (or Ctrl-C) is what the run ends with; a report that
    cannot be written is said on stderr.
    """
    kept = [e for e in engines if e._records is not None and e._records]
    if not kept:
        kept = [e for e in engines if e._records is not None][:1]
    if not kept:
        print(f"flowbridge: --report {path}: the script made no engine that keeps records", file=sys.stderr)
        return
    stem, suffix = os.path.splitext(path)
    for i, engine in enumerate(kept):
        target = path if i == 0 else f"{stem}.{engine.uid}{suffix}"
        try:
            from ._report import Report

            report = Report(list(engine._records), name=engine.uid)
            if suffix == ".json":
                report.to_json(target)
            else:
                report.to_html(target)
        except Exception as exc:  # never hide how the script ended
            print(f"flowbridge: could not write the report {target}: {type(exc).__name__}: {exc}", file=sys.stderr)
        else:
            print(f"flowbridge: report written to {target}", file=sys.stderr)


async def _closing_engines(body: Any) -> None:
    """The script's body; then the engines it left open are shut down while the loop still runs."""
    from ._engine import shutdown_left_open

    try:
        await body
    finally:
        await shutdown_left_open()


def _backends(check: bool = False, only: list[str] | None = None) -> int:
    from ._errors import BackendUnavailable
    from ._registry import load, names

    if only and not check:
        raise UsageError(f"backends: names ({', '.join(only)}) go with --check: flowbridge backends --check {only[0]}")
    if only:
        from ._config import close_match

        for name in only:
            if name not in names():
                raise UsageError(f"backends --check: no backend {name!r}{close_match(name, names())}")
    installed = []
    for name in names():
        try:
            cls = load(name)
            status = f"installed ({cls.__module__}.{cls.__qualname__})"
            installed.append(name)
        except BackendUnavailable as exc:
            status = f"not installed: {exc}"
        print(f"{name:<12} {status}")
    if not check:
        return 0
    from ._check import report

    print(flush=True)
    return report([n for n in installed if n in only] if only else installed)


def parse(command: str, args: list[str]) -> tuple[dict[str, str | bool], str | None, list[str]]:
    """flowbridge's options (either side of the script), the script, and the script's arguments."""
    from ._config import close_match

    known = OPTIONS[command]
    values: dict[str, str | bool] = {}
    script: str | None = None
    rest: list[str] = []
    it = iter(args)
    for arg in it:
        if arg == "--":
            rest.extend(it)
            break
        if arg.startswith("-") and arg != "-":
            name, eq, value = arg.partition("=")
            if name in ("-h", "--help"):
                print(USAGE)
                raise SystemExit(0)
            if name not in known:
                fix = close_match(name, known)
                where = f"; to pass it to the script, put it after --: flowbridge {command} {script} -- {arg}"
                raise UsageError(f"{command}: unknown option {name}{fix}" + (where if script else ""))
            if known[name]:
                if not eq:
                    value = next(it, "")
                if not value:
                    raise UsageError(f"{command}: {name} needs a value")
                values[name] = value
            elif eq:
                raise UsageError(f"{command}: {name} takes no value")
            else:
                values[name] = True
        elif script is None:
            script = arg
        else:
            rest.append(arg)
    return values, script, rest


def _main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if argv else 2
    if argv[0] == "--version":
        from . import __version__

        print(f"flowbridge {__version__}")
        return 0
    command, args = argv[0], argv[1:]
    if command not in OPTIONS:
        from ._config import close_match

        fix = close_match(command, OPTIONS)
        raise UsageError(f"unknown command {command!r}{fix}; commands: run, compare, backends")
    values, script, rest = parse(command, args)
    if command == "backends":
        return _backends(bool(values.get("--check")), [script, *rest] if script else None)
    if script is None:
        raise UsageError(f"{command}: name the workflow script, e.g. flowbridge {command} wf.py")
    from ._config import ENV_PROFILE, profile

    if command == "compare":
        from ._compare import compare

        if "--profiles" not in values:
            raise UsageError("compare: --profiles A,B is required")
        names = [p.strip() for p in str(values["--profiles"]).split(",") if p.strip()]
        for name in names:
            profile(name)  # every profile must exist before anything runs
        timeout = None
        if "--timeout" in values:
            try:
                timeout = float(values["--timeout"])
            except ValueError:
                raise UsageError(f"compare: --timeout takes seconds, not {values['--timeout']!r}") from None
        repeat = 1
        if "--repeat" in values:
            try:
                repeat = int(values["--repeat"])
            except ValueError:
                repeat = 0
            if repeat < 1:
                raise UsageError(f"compare: --repeat takes a whole number of runs >= 1, not {values['--repeat']!r}")
        html_path, json_path = values.get("--html"), values.get("--json")
        return compare(
            script, names, rest, str(json_path) if json_path else None, timeout, repeat,
            str(html_path) if html_path else None,
        )
    report = values.get("--report")
    if report is not None and os.path.splitext(str(report))[1] not in (".html", ".htm", ".json"):
        raise UsageError(f"run: --report takes a .html or .json path, not {report!r}")
    if "--progress" in values:
        from ._progress import ENV_PROGRESS

        os.environ[ENV_PROGRESS] = "1"
    if "--profile" in values:
        name = str(values["--profile"])
        profile(name)  # fail now, with the fix, rather than inside the script
        os.environ[ENV_PROFILE] = name
    run_script(script, rest, str(report) if report is not None else None)
    return 0


def main(argv: list[str] | None = None) -> int:
    """``flowbridge ...``: mistakes and configuration errors are one line (``--debug`` shows the traceback)."""
    from ._errors import BackendUnavailable, ConfigError

    args = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in args[: args.index("--")] if "--" in args else "--debug" in args
    try:
        return _main(args)
    except (UsageError, ConfigError, BackendUnavailable) as exc:
        if debug:
            raise
        print(f"flowbridge: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
