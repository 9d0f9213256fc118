"""The unsandboxed alternative a tglib user has: the seed's producer/consumer loop.

tglib's advanced-usage pattern, as written there minus its print() calls: a producer
coroutine per pipeline putting a Job per enabled job on an asyncio.Queue every period
(asyncio.gather of queue.put), and consumers awaiting queue.get() and then the job's
function, here one that returns at once. Offered as our whole-path figure is (3,000 jobs
every 10 ms, two consumers); runs finished per second over SECONDS after WARMUP.

Prints one JSON line: {"runs_per_s": ..., "runs": ..., "seconds": ..., "queued_at_end": ...}.
"""

import asyncio
import dataclasses
import json
import sys
import time
from typing import Dict

JOBS = 3000
PERIOD = 0.01
CONSUMERS = 2
WARMUP = 1.0
SECONDS = float(sys.argv[1]) if len(sys.argv) > 1 else 5.0

finished = 0


@dataclasses.dataclass
class Job:
    name: str
    start_time_ms: int
    params: Dict


async def noop(start_time_ms: int) -> None:
    return None


JOB_FUNCTIONS = {"noop": noop}


async def produce(queue: asyncio.Queue, pipeline: Dict) -> None:
    while True:
        start_time = time.time()
        tasks = [
            queue.put(
                Job(
                    name=job["name"],
                    start_time_ms=int(round(start_time * 1e3)),
                    params=job.get("params", {}),
                )
            )
            for job in pipeline.get("jobs", [])
            if job.get("enabled", False)
        ]
        await asyncio.gather(*tasks)
        sleep_time = start_time + pipeline["period"] - time.time()
        await asyncio.sleep(max(sleep_time, 0))


async def consume(queue: asyncio.Queue) -> None:
    global finished
    while True:
        job = await queue.get()
        function = JOB_FUNCTIONS[job.name]
        await function(job.start_time_ms, **job.params)
        finished += 1


async def main() -> None:
    pipeline = {
        "period": PERIOD,
        "jobs": [{"name": "noop", "enabled": True} for _ in range(JOBS)],
    }
    queue: asyncio.Queue = asyncio.Queue()
    tasks = [asyncio.create_task(produce(queue, pipeline))]
    tasks += [asyncio.create_task(consume(queue)) for _ in range(CONSUMERS)]
    await asyncio.sleep(WARMUP)
    runs0, t0 = finished, time.perf_counter()
    await asyncio.sleep(SECONDS)
    runs1, t1 = finished, time.perf_counter()
    for t in tasks:
        t.cancel()
    print(
        json.dumps(
            {
                "runs_per_s": (runs1 - runs0) / (t1 - t0),
                "runs": runs1 - runs0,
                "seconds": t1 - t0,
                "queued_at_end": queue.qsize(),
            }
        )
    )


if __name__ == "__main__":
    asyncio.run(main())
