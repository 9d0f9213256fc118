"""The names of aiomysql that tglib services import, for the tgrun sandbox. A service
reaches MySQL through ``tglib.clients.MySQLClient().lease()``, which the runner answers;
what it imports from aiomysql itself is for type hints (``aiomysql.sa.result.RowProxy``),
and those names are the lease's own classes. There is no driver, pool or connection here:
``connect``/``create_pool`` raise, naming the way in."""

_NO_DRIVER = (
    "aiomysql cannot connect from the tgrun sandbox (no sockets): "
    "use tglib.clients.MySQLClient().lease(), which the runner answers"
)

from .sa.connection import SAConnection  # noqa: E402
from .sa.result import ResultProxy, RowProxy  # noqa: E402

__all__ = ["SAConnection", "ResultProxy", "RowProxy", "connect", "create_pool"]


def connect(*args, **kwargs):
    raise RuntimeError(_NO_DRIVER)


def create_pool(*args, **kwargs):
    raise RuntimeError(_NO_DRIVER)
