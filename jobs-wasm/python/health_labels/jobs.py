"""The fixture's job: one series per health threshold main() configured, at the tick's
start time (seconds, as its consumer passes it)."""

from typing import List

from tglib.clients.prometheus_client import PrometheusClient, PrometheusMetric

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
