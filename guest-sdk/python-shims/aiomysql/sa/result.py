"""``aiomysql.sa.result``: the rows and results a lease's ``execute`` gives."""

from tglib.clients.mysql_client import ResultProxy, RowProxy

__all__ = ["ResultProxy", "RowProxy"]
