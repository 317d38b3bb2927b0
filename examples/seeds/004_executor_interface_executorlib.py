# Seed 004, the executorlib paper, first example (the Executor interface), verbatim but for
# the import line (executorlib -> flowbridge_executorlib): the same code on executorlib's
# SingleNodeExecutor through ExecutorlibExecutionBackend. Run it with plain python.
from flowbridge_executorlib import Executor

with Executor(backend="local") as exe:
    future_lst = [exe.submit(sum, [i, i]) for i in range(1, 5)]
    print([fs.result() for fs in future_lst])
