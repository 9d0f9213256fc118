"""``aiomysql.sa``'s names (``SAConnection``, ``ResultProxy``, ``RowProxy``): the classes
of ``MySQLClient().lease()`` in the sandbox. ``create_engine`` raises, naming the lease."""

from .. import _NO_DRIVER
from .connection import SAConnection
from .result import ResultProxy, RowProxy

__all__ = ["SAConnection", "ResultProxy", "RowProxy", "create_engine"]


def create_engine(*args, **kwargs):
    raise RuntimeError(_NO_DRIVER)
