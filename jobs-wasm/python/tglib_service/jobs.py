"""A tglib service's jobs.py, as its users write it for tglib (the seed's "Prometheus
Bumper" and "Topology Fetcher"): plain ``async def`` jobs over tglib's clients and
SQLAlchemy, no tgrun import. ``make jobs`` builds the whole folder into one component,
``tglib_service``; a job entry runs one of its functions with ``"module": "tglib_service"``."""

from datetime import datetime
from typing import List

from sqlalchemy import insert
from tglib.clients import APIServiceClient, MySQLClient
from tglib.clients.prometheus_client import PrometheusClient, PrometheusMetric

from .models import Topology


async def add_x(start_time_ms: int, metric_name: str, x: int) -> None:
    """Add 'x' to the latest value of 'metric_name'.

    Write the derived stat back to Prometheus using the same labels.
    """
    client = PrometheusClient(timeout=2)
    query = client.format_query(metric_name)
    response = await client.query_latest(query)
    if response["status"] != "success":
        return

    metrics: List[PrometheusMetric] = []
    for result in response["data"]["result"]:
        name = f"{metric_name}_plus_{x}"
        labels = result["metric"]
        value = float(result["value"][1]) + x
        metrics.append(PrometheusMetric(name, labels, value, start_time_ms))

    client.write_metrics(metrics)


async def save_topology(start_time_ms: int) -> None:
    results = await APIServiceClient(timeout=1).request_all("getTopology")
    last_updated = datetime.utcfromtimestamp(start_time_ms / 1e3)
    values = [
        {
            "network_name": network_name,
            "topology": topology,
            "last_updated": last_updated,
        }
        for network_name, topology in results.items()
    ]

    query = insert(Topology).values(values)
    async with MySQLClient().lease() as sa_conn:
        await sa_conn.execute(query)
        await sa_conn.connection.commit()
