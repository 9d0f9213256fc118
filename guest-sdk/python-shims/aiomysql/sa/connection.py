"""``aiomysql.sa.connection``: the connection ``MySQLClient().lease()`` gives."""

from tglib.clients.mysql_client import SAConnection

__all__ = ["SAConnection"]
