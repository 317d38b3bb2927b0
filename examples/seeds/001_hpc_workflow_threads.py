# Seed 000/001 "Execution Backends: Seamless Backend Switching", the same workflow on local threads (the one-line switch)
# example, verbatim but for the import lines (radical.asyncflow -> flowbridge).
# Run it with: flowbridge run examples/seeds/001_hpc_workflow_threads.py
import time
import asyncio
from concurrent.futures import ThreadPoolExecutor
from flowbridge import ConcurrentExecutionBackend
from flowbridge import WorkflowEngine

# HPC backend configuration
backend = ConcurrentExecutionBackend(ThreadPoolExecutor()) # (1)!
flow = WorkflowEngine(backend=backend)

@flow.executable_task # (1)!
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

    # Create dependent task execution
    t3 = task3(task1(), task2()) # (1)!
    await t3  # Wait for distributed execution to complete

    print(f'Workflow {wf_id} completed at {time.time()}')

start_time = time.time()

# Execute 5 workflows concurrently across HPC infrastructure
await asyncio.gather(*[run_wf(i) for i in range(5)]) # (1)!

end_time = time.time()
print(f'\nTotal time running asynchronously is: {end_time - start_time}')

# Proper cleanup of HPC resources
await flow.shutdown()
