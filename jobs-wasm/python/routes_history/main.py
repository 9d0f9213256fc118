"""The fixture service's entry point, in the style of tgnms' services (our own code): each
tick, its producer asks every network's topology, drops the networks that failed (logging
each), asks each node's routes in batches and merges the answers, and hands the result to
every job of the pipeline as a param; its consumer calls a job with the start time first."""

import asyncio
import dataclasses
import json
import logging
import sys
import time
from typing import Any, Dict, List, NoReturn

from tglib import ClientType, init
from tglib.clients import APIServiceClient
from tglib.exceptions import ClientRuntimeError
from tglib.utils.dict import deep_update

from . import jobs
from .routes import routes

BATCH_SIZE = 2


@dataclasses.dataclass
class Job:
    name: str
    start_time_ms: int
    params: Dict[str, Any]


async def fetch_routes(client: APIServiceClient, network: str, nodes: List[str]) -> Dict:
    """The routes of ``nodes``, asked in batches and merged into one dict."""
    routes_of: Dict[str, Any] = {}
    batches = [nodes[i : i + BATCH_SIZE] for i in range(0, len(nodes), BATCH_SIZE)]
    answers = await asyncio.gather(
        *(client.request(network, "getDefaultRoutes", params={"nodes": b}) for b in batches)
    )
    for answer in answers:
        deep_update(routes_of, {n: {"asked": True} for n in answer["params"]["nodes"]})
    return routes_of


async def produce(queue: asyncio.Queue, name: str, pipeline: Dict) -> NoReturn:
    if pipeline["period"] < 60:
        raise ValueError("Pipeline period must be at least 60 seconds")

    client = APIServiceClient(timeout=2)
    while True:
        start_time = time.time()
        network_info: Dict[str, Dict] = {}
        topologies = await client.request_all("getTopology", return_exceptions=True)
        for network, topology in topologies.items():
            if isinstance(topology, ClientRuntimeError):
                logging.error(f"Failed to fetch the topology of {network}: {topology}")
                continue
            nodes = [node["name"] for node in topology["nodes"]]
            network_info[network] = {"nodes": await fetch_routes(client, network, nodes)}

        for job in pipeline.get("jobs", []):
            if job.get("enabled", False):
                await queue.put(
                    Job(
                        name=job["name"],
                        start_time_ms=int(round(start_time * 1e3)),
                        params={**job.get("params", {}), "network_info": network_info},
                    )
                )
        await asyncio.sleep(start_time + pipeline["period"] - time.time())


async def consume(queue: asyncio.Queue) -> NoReturn:
    while True:
        job = await queue.get()
        logging.info(f"Starting the '{job.name}' job")
        await getattr(jobs, job.name)(job.start_time_ms, **job.params)
        logging.info(f"Finished running the '{job.name}' job")


async def async_main(config: Dict) -> None:
    q: asyncio.Queue = asyncio.Queue()
    producers = [produce(q, name, p) for name, p in config["pipelines"].items()]
    consumers = [consume(q) for _ in range(config["num_consumers"])]
    await asyncio.gather(*producers, *consumers)


def main() -> None:
    try:
        with open("./service_config.json") as f:
            config = json.load(f)
    except (json.JSONDecodeError, OSError):
        logging.exception("Failed to parse service configuration file")
        sys.exit(1)

    init(
        lambda: async_main(config),
        {ClientType.API_SERVICE_CLIENT, ClientType.MYSQL_CLIENT, ClientType.PROMETHEUS_CLIENT},
        routes,
    )


if __name__ == "__main__":
    main()
