"""The install story: every backend's extra installs what it needs, from a clone as from a wheel.

The adapters ship inside the flowbridge distribution, so an extra only names frameworks on
the package index; an extra naming a `flowbridge-*` distribution cannot be resolved (none
is published), and that is what "not installed" messages tell users to run.
"""

from __future__ import annotations

import tomllib
from importlib.metadata import entry_points, requires
from pathlib import Path

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
    import subprocess
    import sys

    hide = "import sys; sys.modules['distributed'] = sys.modules['parsl'] = None\n"  # as if not installed
    script = hide + "from flowbridge import *\nprint(sorted(n for n in dir() if n.endswith('ExecutionBackend')))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    names = out.stdout.strip()
    assert "'ConcurrentExecutionBackend'" in names and "'ExecutorlibExecutionBackend'" in names
    assert "Dask" not in names and "Parsl" not in names


def test_a_backend_whose_framework_is_missing_names_its_extra() -> None:
    import subprocess
    import sys

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
