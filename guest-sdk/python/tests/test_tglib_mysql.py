"""tglib's ``MySQLClient().lease()`` with SQLAlchemy 1.3 core statements, on the machine's
Python: the runner's SQL host functions are played by a real SQLite database (Python's
``sqlite3``) for the SQLite dialect, and by a recorder for the MySQL one."""

import datetime
import json
import sqlite3
import unittest

from componentize_py_types import Err
from sqlalchemy import insert, select
from wit_world.imports import sql as sql_host
from wit_world.imports import types as wit

import tgrun
from tglib.clients import MySQLClient
from tglib.exceptions import ClientRuntimeError
from tglib_service.models import Topology  # the example service's table, as tglib's docs
from tgrun import _aio


def _py(v):
    """A WIT value as sqlite3 takes it."""
    if isinstance(v, (sql_host.Value_Null,)):
        return None
    if isinstance(v, sql_host.Value_Datetime):
        return datetime.datetime.utcfromtimestamp(v.value / 1000).isoformat(" ")
    return v.value


def _wit(v):
    if v is None:
        return sql_host.Value_Null()
    if isinstance(v, int):
        return sql_host.Value_Int(v)
    if isinstance(v, float):
        return sql_host.Value_Float(v)
    return sql_host.Value_Text(v)


class SqliteHost:
    """The SQL host functions over one sqlite3 connection; commits are real."""

    def __init__(self, dialect="sqlite"):
        self.db = sqlite3.connect(":memory:", isolation_level=None)
        self.db.execute(
            "CREATE TABLE topology (id INTEGER PRIMARY KEY, network_name VARCHAR(255) NOT NULL, "
            "topology JSON NOT NULL, last_updated DATETIME NOT NULL)"
        )
        self.dialect = dialect
        self.statements = []
        self.committed = 0
        host = self

        class Tx:
            def __init__(self):
                host.db.execute("BEGIN")

            def query(self, statement, params):
                host.statements.append((statement, params))
                cur = host.db.execute(statement, [_py(p) for p in params])
                cols = [d[0] for d in cur.description]
                return sql_host.RowSet(cols, [[_wit(v) for v in row] for row in cur.fetchall()])

            def execute(self, statement, params):
                host.statements.append((statement, params))
                cur = host.db.execute(statement, [_py(p) for p in params])
                return sql_host.ExecResult(cur.rowcount, cur.lastrowid)

            @staticmethod
            def commit(tx):
                host.db.execute("COMMIT")
                host.committed += 1

            @staticmethod
            def rollback(tx):
                host.db.execute("ROLLBACK")

        self.Tx = Tx

    def __enter__(self):
        self.old = (sql_host.dialect, sql_host.begin, sql_host.Transaction)
        sql_host.dialect = lambda: self.dialect
        sql_host.begin = self.Tx
        sql_host.Transaction = self.Tx
        return self

    def __exit__(self, *exc):
        sql_host.dialect, sql_host.begin, sql_host.Transaction = self.old


async def save(start_time_ms, results):
    """The seed's save_topology, as tglib's documentation writes it."""
    last_updated = datetime.datetime.utcfromtimestamp(start_time_ms / 1e3)
    values = [
        {"network_name": name, "topology": topology, "last_updated": last_updated}
        for name, topology in results.items()
    ]
    query = insert(Topology).values(values)
    async with MySQLClient().lease() as sa_conn:
        await sa_conn.execute(query)
        await sa_conn.connection.commit()


async def read(start_dt):
    query = select([Topology.topology]).where(Topology.last_updated >= start_dt)
    async with MySQLClient().lease() as conn:
        cursor = await conn.execute(query)
        return [dict(row) for row in await cursor.fetchall()]


class Lease(unittest.TestCase):
    def test_insert_commit_and_select_through_sqlalchemy(self):
        with SqliteHost() as host:
            _aio.run(save(1_600_000_000_000, {"net1": {"nodes": [1]}, "net2": {"nodes": []}}))
            self.assertEqual(host.committed, 1)
            # Bound through the types' processors: JSON as its text; the datetime as the
            # runner's date-time value (ms), as every job's.
            insert_sql, params = host.statements[0]
            self.assertTrue(insert_sql.startswith("INSERT INTO topology"), insert_sql)
            self.assertEqual(json.loads(params[1].value), {"nodes": [1]})
            self.assertIsInstance(params[2], sql_host.Value_Datetime)
            self.assertEqual(params[2].value, 1_600_000_000_000)
            rows = _aio.run(read(datetime.datetime(2020, 1, 1)))
            self.assertEqual(rows, [{"topology": {"nodes": [1]}}, {"topology": {"nodes": []}}])
            self.assertEqual(_aio.run(read(datetime.datetime(2021, 1, 1))), [])

    def test_rows_by_position_name_and_attribute(self):
        async def rows():
            async with MySQLClient().lease() as conn:
                await conn.execute(insert(Topology).values(network_name="n", topology=[1], last_updated=datetime.datetime(2020, 1, 2, 3, 4, 5)))
                cursor = await conn.execute(select([Topology.network_name, Topology.last_updated]))
                row = await cursor.first()
                count = await (await conn.execute("SELECT count(*) AS n FROM topology")).scalar()
                return row, count

        with SqliteHost() as host:
            row, count = _aio.run(rows())
            self.assertEqual(host.committed, 0)  # no commit: the lease rolled back
        self.assertEqual((row[0], row["network_name"], row.network_name, row[Topology.network_name]), ("n",) * 4)
        self.assertEqual(row.last_updated, datetime.datetime(2020, 1, 2, 3, 4, 5))
        self.assertEqual(row.keys(), ["network_name", "last_updated"])
        self.assertEqual(count, 1)

    def test_mysql_statements_are_compiled_for_mysql(self):
        seen = []

        class Tx:
            def __init__(self):
                pass

            def execute(self, statement, params):
                seen.append((statement, params))
                return sql_host.ExecResult(2, 7)

            @staticmethod
            def commit(tx):
                pass

            @staticmethod
            def rollback(tx):
                pass

        old = (sql_host.dialect, sql_host.begin, sql_host.Transaction)
        sql_host.dialect, sql_host.begin, sql_host.Transaction = (lambda: "mysql"), Tx, Tx
        try:
            _aio.run(save(1_600_000_000_000, {"a": {"x": 1}, "b": {"y": 2}}))
        finally:
            sql_host.dialect, sql_host.begin, sql_host.Transaction = old
        statement, params = seen[0]
        self.assertEqual(
            statement,
            "INSERT INTO topology (network_name, topology, last_updated) VALUES (?, ?, ?), (?, ?, ?)",
        )
        self.assertEqual(params[0].value, "a")
        self.assertEqual(json.loads(params[1].value), {"x": 1})
        # MySQL takes the datetime itself: the runner's date-time value, in ms.
        self.assertIsInstance(params[2], sql_host.Value_Datetime)
        self.assertEqual(params[2].value, 1_600_000_000_000)

    def test_a_failure_is_tglibs_runtime_error(self):
        def refuse():
            raise Err(wit.Error_Upstream("connection refused"))

        old = (sql_host.dialect, sql_host.begin)
        sql_host.dialect, sql_host.begin = (lambda: "mysql"), refuse
        try:
            with self.assertRaises(ClientRuntimeError) as e:
                _aio.run(save(0, {"a": {}}))
            self.assertIsInstance(e.exception.__cause__, tgrun.Upstream)
        finally:
            sql_host.dialect, sql_host.begin = old


if __name__ == "__main__":
    unittest.main()
