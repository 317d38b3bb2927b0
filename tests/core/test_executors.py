"""ConcurrentExecutionBackend on other executors, `__main__` functions, third-party adapters."""

import subprocess
import sys
import textwrap

import pytest

from flowbridge import ConcurrentExecutionBackend, WorkflowEngine
from flowbridge._registry import load, names


def triple(x):
    return 3 * x


async def test_executorlib_single_node_executor():
    executorlib = pytest.importorskip("executorlib")
    with executorlib.SingleNodeExecutor(max_workers=2, block_allocation=True, hostname_localhost=True) as exe:
        async with WorkflowEngine(backend=ConcurrentExecutionBackend(exe)) as flow:
            t = flow.function_task(triple)
            assert await t(t(2)) == 18

            @flow.function_task
            async def async_body(x):
                return x + 1

            assert await async_body(t(1)) == 4
            assert (await flow.executable_task(lambda: ["echo", "from executorlib"])()).strip() == "from executorlib"


def test_main_functions_on_processes(tmp_path):
    script = tmp_path / "wf.py"
    script.write_text(
        textwrap.dedent(
            """
            import asyncio, os
            from flowbridge import ConcurrentExecutionBackend, WorkflowEngine

            def where(x):  # defined in __main__: must travel by value
                return x, os.getpid() != PARENT

            PARENT = os.getpid()

            async def main():
                async with WorkflowEngine(backend=ConcurrentExecutionBackend(processes=True)) as flow:
                    print(await flow.function_task(where)(7))

            if __name__ == "__main__":
                asyncio.run(main())
            """
        )
    )
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "(7, True)"


def test_third_party_adapter_through_the_entry_point_group(tmp_path, monkeypatch):
    (tmp_path / "thirdparty_adapter.py").write_text(
        textwrap.dedent(
            """
            from flowbridge import ConcurrentExecutionBackend

            class ThirdParty(ConcurrentExecutionBackend):
                name = "thirdparty"
            """
        )
    )
    dist = tmp_path / "thirdparty_adapter-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: thirdparty-adapter\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[flowbridge.adapters]\nthirdparty = thirdparty_adapter:ThirdParty\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert "thirdparty" in names()
    assert load("thirdparty").__name__ == "ThirdParty"
    engine = WorkflowEngine(backend="thirdparty")
    assert type(engine.backends["default"]).__name__ == "ThirdParty"
