# RADICAL-Pilot through flowbridge: Python functions on RAPTOR workers, executables, an MPI task.
# Run it with: flowbridge run examples/radical_functions.py   (MPI needs mpiexec: Debian openmpi-bin)
import asyncio

from flowbridge import RadicalExecutionBackend, Resources, WorkflowEngine

backend = await RadicalExecutionBackend({"resource": "local.localhost"})

async with WorkflowEngine(backend=backend) as flow:

    @flow.function_task  # defined in __main__: shipped to the RAPTOR worker by value
    def square(x):
        return x * x

    @flow.function_task
    async def total(values):
        await asyncio.sleep(0)
        return sum(values)

    @flow.function_task
    def distinct(*values):
        return set(values)  # msgpack cannot encode a set; flowbridge returns it pickled

    @flow.function_task
    def check(n):
        if n < 0:
            raise ValueError(f"negative: {n}")
        return n

    @flow.executable_task
    def report(n):
        return f"echo sum of squares = {n}"

    @flow.executable_task(resources=Resources(ranks=2))
    def mpi_hello():
        return "echo rank $OMPI_COMM_WORLD_RANK of $OMPI_COMM_WORLD_SIZE"

    squares = [square(i) for i in range(10)]
    print((await report(total(squares))).strip())
    print("distinct:", sorted(await distinct(1, 2, 2, 3)))
    try:
        await check(-1)
    except ValueError as exc:  # the remote exception, with its own type
        print("caught:", exc)
    print("mpi:", sorted((await mpi_hello()).splitlines()))
