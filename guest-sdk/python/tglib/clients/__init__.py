"""tglib's clients, lent by the runner: ``PrometheusClient``, ``APIServiceClient``."""

from .api_service_client import APIServiceClient
from .prometheus_client import PrometheusClient, PrometheusMetric

__all__ = ["APIServiceClient", "PrometheusClient", "PrometheusMetric"]
