"""tglib's clients, lent by the runner: ``PrometheusClient``, ``APIServiceClient``,
``MySQLClient`` (SQLAlchemy core statements)."""

from .api_service_client import APIServiceClient
from .mysql_client import MySQLClient
from .prometheus_client import PrometheusClient, PrometheusMetric

__all__ = ["APIServiceClient", "MySQLClient", "PrometheusClient", "PrometheusMetric"]
