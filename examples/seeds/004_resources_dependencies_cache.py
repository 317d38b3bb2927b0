"""Seed 004, the executorlib paper's other features on one node: a resource_dict per call,
futures as arguments (dependencies), and the cache (`cache_directory`).

    pip install "flowbridge[executorlib]"
    python examples/seeds/004_resources_dependencies_cache.py

`from flowbridge_executorlib import Executor` runs on executorlib through
ExecutorlibExecutionBackend; `from flowbridge import Executor` with
`Executor(backend="executorlib")` is the same through flowbridge's facade. The paper's
Flux/TensorFlow/GPU example needs Flux and GPUs and is not run here.
"""

import os
import tempfile
import time

from flowbridge_executorlib import Executor


def where(i):
    return i, os.getcwd()


def double(x):
    time.sleep(0.5)  # "expensive": the second run reads the cache instead
    return 2 * x


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as scratch:
        with Executor(backend="local") as exe:
            # a dedicated working directory for one call: it runs in a process of its own
            fs = exe.submit(where, 1, resource_dict={"cwd": os.path.join(scratch, "step-1")})
            print("ran in", os.path.relpath(fs.result()[1], scratch))
            # dependencies: each call waits for the future it is given
            fs = exe.submit(sum, [1, 1])
            for _ in range(3):
                fs = exe.submit(sum, [fs, fs])
            print("chained sum =", fs.result())
        cache = os.path.join(scratch, "cache")
        for run in ("first", "second"):
            start = time.perf_counter()
            with Executor(backend="local", cache_directory=cache) as exe:
                values = [f.result() for f in [exe.submit(double, i) for i in range(4)]]
            print(f"{run} run: {values} in {time.perf_counter() - start:.1f} s")
