"""flowbridge-executorlib: run flowbridge workflows on executorlib (one node, srun in a job, sbatch per task).

from flowbridge import WorkflowEngine, ExecutorlibExecutionBackend

flow = await WorkflowEngine.create(backend=ExecutorlibExecutionBackend(cache_directory="cache"))
"""

import warnings

# executorlib 1.11 uses pydantic.Extra (deprecated in pydantic 2) when pydantic is installed
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import executorlib  # noqa: F401

from ._backend import KINDS, ExecutorlibExecutionBackend
from ._executor import Executor

__all__ = ["KINDS", "Executor", "ExecutorlibExecutionBackend"]
