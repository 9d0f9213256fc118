"""Test fixture: a tglib service in the style of tgnms' services (our own code, not
theirs). Its producer (main.py) fetches each tick what its jobs share; ``record_routes``
writes one series per network and keeps one row per node of what it was handed.

Its imports are what real services and their dependencies import at start-up: ``ssl``
through ``urllib.request`` and ``asyncio``, ``getpass.getuser()`` as a MySQL driver does
for its default user, tglib's utilities, aiomysql's row type for hints."""

import asyncio.sslproto  # noqa: F401 (imported by HTTP clients at start-up)
import getpass
import ssl
from typing import Dict, List
from urllib.request import HTTPSHandler  # noqa: F401

from tglib.clients import APIServiceClient
from tglib.clients.prometheus_client import PrometheusClient, PrometheusMetric, consts

from .utils.db import save_routes

# Module level, as a driver would at import: both run at build time, in the snapshot.
DEFAULT_DB_USER = getpass.getuser()
TLS_CONTEXT = ssl.create_default_context()


async def record_routes(start_time_ms: int, network_info: Dict[str, Dict], hops: int = 1) -> None:
    """One series per network and one row per node, from what the producer fetched."""
    rows: List[Dict] = []
    metrics: List[PrometheusMetric] = []
    for network, info in network_info.items():
        assert network in APIServiceClient.network_names()
        for node in info["nodes"]:
            rows.append({"network_name": network, "node_name": node, "hops": hops})
        labels = {consts.network: network, consts.is_pop: True, "user": DEFAULT_DB_USER}
        metrics.append(PrometheusMetric("routes_nodes", labels, len(info["nodes"]), start_time_ms))

    PrometheusClient.write_metrics(metrics)
    await save_routes(start_time_ms, rows)
