"""The fixture's jobs: one series per health threshold main() configured, at the tick's
start time (seconds, as its consumer passes it); and each link's health from its latest
value in Prometheus, in the style of tgnms' health service."""

import logging
from typing import List

from tglib.clients.prometheus_client import PrometheusClient, PrometheusMetric, consts
from tglib.exceptions import ClientRuntimeError

from .stats.health import health_of
from .stats.settings import Settings


async def generate_health_labels(time_s: int, period_s: int) -> None:
    if not Settings.thresholds:
        raise RuntimeError("main() did not run: no thresholds")
    metrics: List[PrometheusMetric] = [
        PrometheusMetric(
            f"{Settings.prefix}health_threshold",
            {"level": level, "period": period_s},
            value,
            int(round(time_s * 1e3)),
        )
        for level, value in Settings.thresholds.items()
    ]
    PrometheusClient.write_metrics(metrics)


async def generate_link_health(time_s: int, period_s: int, metric: str) -> None:
    """Each link's latest ``metric`` from Prometheus, and its health by the thresholds."""
    client = PrometheusClient(timeout=2)
    try:
        response = await client.query_latest(metric)
    except ClientRuntimeError:
        logging.exception(f"Failed to fetch {metric} from Prometheus")
        return
    if response["status"] != "success":
        logging.error(f"Prometheus did not answer {metric}: {response}")
        return
    metrics: List[PrometheusMetric] = []
    for result in response["data"]["result"]:
        value = float(result["value"][1])
        labels = {
            consts.link_name: result["metric"][consts.link_name],
            "level": health_of(value, Settings.thresholds),
        }
        metrics.append(
            PrometheusMetric(f"{Settings.prefix}link_health", labels, value, time_s * 1000)
        )
    PrometheusClient.write_metrics(metrics)
