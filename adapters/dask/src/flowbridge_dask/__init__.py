"""flowbridge-dask: run flowbridge workflows on Dask (LocalCluster, your cluster, or batch jobs).

from flowbridge import WorkflowEngine, DaskExecutionBackend

flow = await WorkflowEngine.create(backend=DaskExecutionBackend(address="tcp://127.0.0.1:8786"))
"""

from ._backend import DaskExecutionBackend

__all__ = ["DaskExecutionBackend"]
