# Seed 003, notebook "Express, Manage, and Execute async/sync workflows", first cell,
# verbatim but for the import lines (radical.asyncflow -> flowbridge).
# Run it with: flowbridge run examples/seeds/003_notebook_threads.py
import time
import asyncio
from flowbridge import ConcurrentExecutionBackend
from concurrent.futures import ThreadPoolExecutor
from flowbridge import WorkflowEngine

backend = await ConcurrentExecutionBackend(ThreadPoolExecutor())

async with WorkflowEngine(backend=backend) as flow:
    @flow.function_task
    async def task1(*args):
        return time.time()

    @flow.function_task
    async def task2(*args):
        return time.time()

    @flow.function_task
    async def task3(*args):
        return time.time()

    async def run_wf(wf_id):

        print(f'Starting workflow {wf_id} at {time.time()}')
        t3 = task3(task1(), task2())
        await t3 # Blocking operation so the entire workflow will block
        print(f'Workflow {wf_id} completed at {time.time()}')

    start_time = time.time()
    await asyncio.gather(*[run_wf(i) for i in range(5)])
    end_time = time.time()

    print(f'\nTotal time running asynchronously is: {end_time - start_time}')
