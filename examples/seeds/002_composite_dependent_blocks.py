# Seed 002 "Composite Workflows", example: blocks with dependency, verbatim but for the
# import lines (radical.asyncflow -> flowbridge).
# Run it with: flowbridge run examples/seeds/002_composite_dependent_blocks.py
import time
import asyncio
from flowbridge import ConcurrentExecutionBackend
from flowbridge import WorkflowEngine
from concurrent.futures import ThreadPoolExecutor
backend = await ConcurrentExecutionBackend(ThreadPoolExecutor())
asyncflow = await WorkflowEngine.create(backend=backend)

@asyncflow.function_task
async def task1(name: str):
    now = time.time()
    print(f"[{now:.2f}] {name} started")
    await asyncio.sleep(0.5) # simulate work
    print(f"[{time.time():.2f}] {name} completed")
    return now

@asyncflow.function_task
async def task2(name: str):
    now = time.time()
    print(f"[{now:.2f}] {name} started")
    await asyncio.sleep(0.5) # simulate work
    print(f"[{time.time():.2f}] {name} completed")
    return now

@asyncflow.function_task
async def task3(name: str, *args):
    now = time.time()
    print(f"[{now:.2f}] {name} started")
    await asyncio.sleep(0.5) # simulate work
    print(f"[{time.time():.2f}] {name} completed")
    return now

async def create_workflow(name):
    now = time.time()
    print(f"[{now:.2f}] {name} started")
    t1 = task1('task1')
    t2 = task2('task2')
    t3 = task3('task3', t1, t2)
    await t3
    print(f"[{time.time():.2f}] {name} completed")

@asyncflow.block # (1)!
async def create_block(name: str, *args):
    wf1 = await create_workflow('WF1')
    wf2 = await create_workflow('WF2')
    wf3 = await create_workflow('WF3')
    print(f"Processing {name} completed at {time.time():.2f}")

start_time = time.time()
block1 = create_block("Block A") # (1)!
block2 = create_block("Block B") # (2)!
block3 = create_block("Block C", block1, block2) # (3)!
await block3
end_time = time.time()
print(f"\nTotal time running asynchronously is: {end_time - start_time:.2f}s")
await asyncflow.shutdown() # (2)!
