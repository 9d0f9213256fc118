"""A tglib service's jobs.py, as its users write it for tglib (the seed's "Prometheus
Bumper"): plain ``async def`` jobs over tglib's clients, no tgrun import. ``make jobs``
builds the whole file into one component, ``tglib_service``; a job entry runs one of its
functions with ``"module": "tglib_service"``."""

from typing import List

from tglib.clients.prometheus_client import PrometheusClient, PrometheusMetric


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
