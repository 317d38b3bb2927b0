# Seed 003, notebook "Express, Manage, and Execute async/sync workflows", second cell
# (the one-line switch to RADICAL-Pilot), verbatim but for the import lines.
# Run it with: flowbridge run examples/seeds/003_notebook_radical.py
import time
import asyncio
from flowbridge import RadicalExecutionBackend
from flowbridge import WorkflowEngine

backend = await RadicalExecutionBackend({'resource': 'local.localhost'})

#                  vs

# backend = await ConcurrentExecutionBackend(ThreadPoolExecutor())

async with WorkflowEngine(backend=backend) as flow:
    @flow.executable_task
    async def task1(*args):
        return "/bin/date"

    @flow.executable_task
    async def task2(*args):
        return "/bin/date"

    @flow.executable_task
    async def task3(*args):
        return "/bin/date"

    async def run_wf(wf_id):

        print(f'Starting workflow {wf_id} at {time.time()}')
        t3 = task3(task1(), task2())
        await t3 # Blocking operation so the entire workflow will block
        print(f'Workflow {wf_id} completed at {time.time()}')

    start_time = time.time()
    await asyncio.gather(*[run_wf(i) for i in range(5)])
    end_time = time.time()

    print(f'\nTotal time running asynchronously is: {end_time - start_time}')
