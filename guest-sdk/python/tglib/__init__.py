"""tglib's names for a tglib service's Python, run in the tgrun sandbox.

A service's ``jobs.py`` (and, later, ``models.py`` and ``routes.py``) import from here as
they do from tglib: ``from tglib.clients import APIServiceClient``,
``from tglib.clients.prometheus_client import PrometheusClient, PrometheusMetric, ops``,
``from tglib.exceptions import ClientRuntimeError``. Every call goes to the client the
runner lends (the job's ``capabilities``), through the tgrun SDK.

What is not here, and why: tglib's ``init()`` and its producer and consumer loop (the runner
is that loop, with its limits and policies), and the Kafka clients (the sandbox has no
Kafka capability).
"""

import enum

from .exceptions import (
    ClientError,
    ClientRestartError,
    ClientRuntimeError,
    ClientStoppedError,
    ConfigError,
    DuplicateRouteError,
    TGLibError,
)


class ClientType(enum.Enum):
    """tglib's client names (``init``'s second argument). The runner starts the clients
    that ``config.json`` configures; a job's ``capabilities`` say which it may use."""

    API_SERVICE_CLIENT = 1
    KAFKA_CONSUMER = 2
    KAFKA_PRODUCER = 3
    MYSQL_CLIENT = 4
    PROMETHEUS_CLIENT = 5


# While tgrun runs a service's main() (tgrun._service), the calls of init() are kept here
# instead of refused.
_init_calls = None


def init(main, clients, extra_routes=None):
    """tglib's entry point, which the runner replaces: it runs the pipelines of
    ``service_config.json``, one job per run in a fresh sandbox. Called by a service's
    ``main()`` in a run (see ``tgrun._service``), it does nothing: the runner is the
    server, the producers and the consumers."""
    if _init_calls is not None:
        _init_calls.append((main, clients, extra_routes))
        return
    raise TGLibError(
        "tglib.init() does not run in the sandbox: the runner is the service "
        "(it runs the pipelines of service_config.json and serves the routes)"
    )


__all__ = [
    "ClientType",
    "init",
    "TGLibError",
    "ConfigError",
    "DuplicateRouteError",
    "ClientError",
    "ClientRestartError",
    "ClientStoppedError",
    "ClientRuntimeError",
]
