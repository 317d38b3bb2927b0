"""flowbridge-executorlib: run flowbridge workflows on executorlib (one node, srun in a job, sbatch per task).

from flowbridge import WorkflowEngine, ExecutorlibExecutionBackend

flow = await WorkflowEngine.create(backend=ExecutorlibExecutionBackend(cache_directory="cache"))
"""

from ._backend import KINDS, ExecutorlibExecutionBackend

__all__ = ["KINDS", "ExecutorlibExecutionBackend"]
