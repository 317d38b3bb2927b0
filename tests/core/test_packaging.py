"""The install story: every backend's extra installs what it needs, from a clone as from a wheel.

The adapters ship inside the flowbridge distribution, so an extra only names frameworks on
the package index; an extra naming a `flowbridge-*` distribution cannot be resolved (none
is published), and that is what "not installed" messages tell users to run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from importlib.metadata import entry_points, requires
from pathlib import Path

import pytest

from flowbridge._registry import KNOWN

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_every_backend_hint_names_an_extra_that_exists_and_names_no_unpublished_distribution() -> None:
    extras = PROJECT["project"]["optional-dependencies"]
    hinted = {extra for _, extra in KNOWN.values() if extra is not None}
    assert hinted <= set(extras), f"a BackendUnavailable hint names a missing extra: {hinted - set(extras)}"
    for extra, needs in extras.items():
        for requirement in needs:
            assert not requirement.startswith("flowbridge-"), f"[{extra}] needs {requirement}, which nobody publishes"
    installed = requires("flowbridge") or []
    assert not [r for r in installed if r.startswith("flowbridge-")]
    assert any(r.startswith("distributed") and "extra == 'dask'" in r for r in installed)


def test_the_wheel_carries_every_adapter_and_its_entry_point() -> None:
    packages = PROJECT["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]
    adapters = sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("adapters/*/src/flowbridge_*") if p.is_dir())
    assert adapters and set(adapters) <= set(packages)
    points = {ep.name: ep.value for ep in entry_points(group="flowbridge.adapters")}
    for name, (target, extra) in KNOWN.items():
        if extra is not None:
            assert points.get(name) == target
    assert not list(ROOT.glob("adapters/*/pyproject.toml")), "an adapter folder is not a distribution of its own"


def test_star_import_works_whatever_is_installed() -> None:
    hide = "import sys; sys.modules['distributed'] = sys.modules['parsl'] = None\n"  # as if not installed
    script = hide + "from flowbridge import *\nprint(sorted(n for n in dir() if n.endswith('ExecutionBackend')))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    names = out.stdout.strip()
    assert "'ConcurrentExecutionBackend'" in names and "'ExecutorlibExecutionBackend'" in names
    assert "Dask" not in names and "Parsl" not in names


def test_a_backend_whose_framework_is_missing_names_its_extra() -> None:
    script = (
        "import sys; sys.modules['parsl'] = sys.modules['radical.pilot'] = None\n"  # as if not installed
        "from flowbridge import BackendUnavailable, WorkflowEngine\n"
        "for name in ('parsl', 'radical'):\n"
        "    try:\n"
        "        WorkflowEngine(backend=name)\n"
        "    except BackendUnavailable as exc:\n"
        "        print(exc)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert 'pip install "flowbridge[parsl]"' in out.stdout and 'pip install "flowbridge[radical]"' in out.stdout


TASK_SCRIPT = '''
import asyncio

import flowbridge
from flowbridge import DaskExecutionBackend, WorkflowEngine


def double(x):
    return 2 * x


async def main():
    async with WorkflowEngine(backend=DaskExecutionBackend(n_workers=1, threads_per_worker=1)) as flow:
        print("result", await flow.function_task(double)(21), "from", flowbridge.__file__)


if __name__ == "__main__":
    asyncio.run(main())
'''


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_the_printed_hint_installs_dask_from_a_built_wheel_into_a_fresh_venv(tmp_path: Path) -> None:
    """Build the wheel (PEP 517, as ``python -m build`` does), install it bare into a fresh venv, ask
    that venv for the Dask backend, run the install command its error prints as printed (pip finds
    flowbridge in the wheel folder only: no index serves it), then run one task on Dask."""
    venv, dist = tmp_path / "venv", tmp_path / "dist"
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    env.pop("VIRTUAL_ENV", None)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["PIP_FIND_LINKS"] = " ".join(filter(None, [str(dist), env.get("PIP_FIND_LINKS")]))
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    python = str(venv / "bin" / "python")

    def run(*argv: str, timeout: float = 300) -> str:
        out = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout)
        assert out.returncode == 0, f"{argv}: exit {out.returncode}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
        return out.stdout

    run(_base_python(), "-m", "venv", str(venv))
    run(python, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(ROOT))
    assert [p.name for p in dist.iterdir()] == ["flowbridge-0.1.0-py3-none-any.whl"]
    run(python, "-m", "pip", "install", "-q", "flowbridge")  # the wheel alone: no framework yet

    asked = run(
        python,
        "-c",
        "from flowbridge import BackendUnavailable, WorkflowEngine\n"
        "try:\n    WorkflowEngine(backend='dask')\nexcept BackendUnavailable as exc:\n    print(exc)\n",
    )
    hint = re.search(r'pip install "flowbridge\[dask\]"', asked)
    assert hint is not None, asked
    run("bash", "-c", hint.group(0))  # as printed, with the venv's pip first on PATH

    script = tmp_path / "one_task.py"
    script.write_text(TASK_SCRIPT)
    said = run(python, str(script), timeout=180)
    assert "result 42 from " + str(venv) in said, said
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dist", "one_task.py", "venv"]  # no litter


def _base_python() -> str:
    """The interpreter this test suite's venv was made from (a venv made from a venv is made from it)."""
    return os.path.join(sys.base_prefix, "bin", "python3")
