"""The seed's Prometheus bumper in Python: reads the latest values of `metric_name` and
writes them back as `<metric_name>_plus_<x>` with `x` added, keeping their labels."""

from typing import List

from tgrun import job, prometheus
from tgrun.prometheus import PrometheusMetric


@job
def add_x(start_time_ms: int, metric_name: str, x: int) -> None:
    """Add 'x' to the latest value of 'metric_name'.

    Write the derived stat back to Prometheus using the same labels.
    """
    query = prometheus.format_query(metric_name)
    response = prometheus.query_latest(query)
    if response["status"] != "success":
        return

    metrics: List[PrometheusMetric] = []
    for result in response.vector():
        name = f"{metric_name}_plus_{x}"
        labels = result.labels
        value = result.value + x
        metrics.append(PrometheusMetric(name, labels, value, start_time_ms))

    prometheus.write_metrics(metrics)
