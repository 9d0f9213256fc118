"""The Python guest SDK: write a tgrun job as a plain function and register it with
``@job``.

.. code-block:: python

    from tgrun import job, log

    @job
    def hello(start_time_ms: int, name: str) -> None:
        log.info(f"hello {name}, scheduled at {start_time_ms}")

The job's ``params`` from ``service_config.json`` arrive as keyword arguments. Two names
are filled in by the runner instead: ``start_time_ms`` (when the run was scheduled, as
tglib passes it) and ``ctx`` (a :class:`Ctx` with the run id, pipeline and settings).

A job ends ``ok`` when the function returns, and ``error`` when it raises: the message is
the exception and its traceback; an SDK :class:`Error` keeps its kind (``upstream``, ...).
Running out of time or memory stops it at once (``timeout``, ``memory_limit``).

Modules: :mod:`tgrun.prometheus`, :mod:`tgrun.api_service`, :mod:`tgrun.sql` (the clients
the runner lends), :mod:`tgrun.log`, :mod:`tgrun.errors`.
"""

# First, before anything imports `ssl` or `getpass`: what the sandbox's CPython lacks at
# import time (see tgrun._compat).
from . import _compat

_compat.install()

from . import api_service, log, prometheus, sql  # noqa: E402
from ._export import Ctx, job
from .errors import (
    Error,
    Failed,
    InvalidArgument,
    LimitExceeded,
    NotConfigured,
    NotPermitted,
    Upstream,
)

log.install()

__all__ = [
    "job",
    "Ctx",
    "log",
    "prometheus",
    "api_service",
    "sql",
    "Error",
    "Failed",
    "InvalidArgument",
    "LimitExceeded",
    "NotConfigured",
    "NotPermitted",
    "Upstream",
]
