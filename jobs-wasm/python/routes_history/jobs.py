"""Test fixture: a tglib service in the style of tgnms' services (our own code, not
theirs). Each tick, ``record_routes`` asks every network's controller for its topology,
drops the networks that failed (logging each), asks for its nodes' routes in batches and
merges the answers, writes one series per network and keeps one row per node.

Its imports are what real services and their dependencies import at start-up: ``ssl``
through ``urllib.request`` and ``asyncio``, ``getpass.getuser()`` as a MySQL driver does
for its default user, tglib's utilities, aiomysql's row type for hints."""

import asyncio
import asyncio.sslproto  # noqa: F401 (imported by HTTP clients at start-up)
import getpass
import logging
import ssl
from typing import Any, Dict, List
from urllib.request import HTTPSHandler  # noqa: F401

from tglib.clients import APIServiceClient
from tglib.clients.prometheus_client import PrometheusClient, PrometheusMetric, consts
from tglib.exceptions import ClientRuntimeError
from tglib.utils.dict import deep_update

from .utils.db import save_routes

# Module level, as a driver would at import: both run at build time, in the snapshot.
DEFAULT_DB_USER = getpass.getuser()
TLS_CONTEXT = ssl.create_default_context()

BATCH_SIZE = 2


async def fetch_routes(client: APIServiceClient, network: str, nodes: List[str]) -> Dict:
    """The routes of ``nodes``, asked in batches and merged into one dict."""
    routes: Dict[str, Any] = {}
    batches = [nodes[i : i + BATCH_SIZE] for i in range(0, len(nodes), BATCH_SIZE)]
    answers = await asyncio.gather(
        *(client.request(network, "getDefaultRoutes", params={"nodes": b}) for b in batches)
    )
    for answer in answers:
        deep_update(routes, {n: {"asked": True} for n in answer["params"]["nodes"]})
    return routes


async def record_routes(start_time_ms: int, hops: int = 1) -> None:
    client = APIServiceClient(timeout=2)
    topologies = await client.request_all("getTopology", return_exceptions=True)
    known = APIServiceClient.network_names()

    rows: List[Dict] = []
    metrics: List[PrometheusMetric] = []
    for network, topology in topologies.items():
        if isinstance(topology, ClientRuntimeError):
            logging.error(f"Failed to fetch the topology of {network}: {topology}")
            continue
        assert network in known
        nodes = [node["name"] for node in topology["nodes"]]
        routes = await fetch_routes(client, network, nodes)
        for node, route in routes.items():
            rows.append({"network_name": network, "node_name": node, "hops": hops, "asked": route["asked"]})
        labels = {consts.network: network, consts.is_pop: True, "user": DEFAULT_DB_USER}
        metrics.append(PrometheusMetric("routes_nodes", labels, len(nodes), start_time_ms))

    PrometheusClient.write_metrics(metrics)
    await save_routes(start_time_ms, rows)
