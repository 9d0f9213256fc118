"""Test fixture: a tglib service's entry point in the style of tgnms' health service (our
own code): the coroutine ``main()`` hands ``init`` builds process-wide settings from the
service's own keys of ``service_config.json`` before it starts its producers, and its
consumer calls each job with the start time in seconds, positionally."""

import asyncio
import dataclasses
import json
import logging
import sys
import time
from typing import Any, Dict, NoReturn

from tglib import init
from tglib.clients import PrometheusClient

from . import jobs
from .stats.settings import Settings


@dataclasses.dataclass
class Job:
    name: str
    start_time_s: int
    params: Dict[str, Any]


async def produce(queue: asyncio.Queue, name: str, pipeline: Dict) -> NoReturn:
    while True:
        start_time = time.time()
        for job in pipeline.get("jobs", []):
            if job.get("enabled", False):
                await queue.put(Job(job["name"], int(start_time), job.get("params", {})))
        await asyncio.sleep(start_time + pipeline["period"] - time.time())


async def consume(queue: asyncio.Queue) -> NoReturn:
    while True:
        job = await queue.get()
        function = getattr(jobs, job.name)
        await function(job.start_time_s, **job.params)


async def async_main(config: Dict) -> None:
    logging.info(f"starting with {config['num_consumers']} consumer(s)")
    Settings.update(config["thresholds"], config.get("label_prefix", ""))
    q: asyncio.Queue = asyncio.Queue()
    await asyncio.gather(
        *(produce(q, name, p) for name, p in config["pipelines"].items()),
        *(consume(q) for _ in range(config["num_consumers"])),
    )


def main() -> None:
    try:
        with open("./service_config.json") as f:
            config = json.load(f)
    except (json.JSONDecodeError, OSError):
        logging.exception("Failed to parse service configuration file")
        sys.exit(1)

    init(lambda: async_main(config), {PrometheusClient})


if __name__ == "__main__":
    main()
