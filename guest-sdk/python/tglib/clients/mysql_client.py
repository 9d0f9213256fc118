"""tglib's ``MySQLClient`` over the runner's SQL client: ``async with MySQLClient().lease()
as conn`` gives a connection that runs SQLAlchemy core statements, as tglib's aiomysql
connections do.

``await conn.execute(statement)`` compiles the statement for the runner's database (MySQL,
or SQLite under the embedded default) and binds its values through SQLAlchemy's type
processors (``JSON``, ...; a ``datetime`` goes as the runner's date-time value, so every
job's rows compare alike); the answer's rows come back through the column types' result
processors. Statements run in a transaction of the lease, which
``await conn.connection.commit()`` commits (as with aiomysql, a lease left without a commit
rolls back). A plain string runs as it is, with ``?`` placeholders.
"""

import datetime
from typing import Any, Dict, List, Optional, Sequence

from sqlalchemy.dialects import mysql as _mysql
from sqlalchemy.dialects import sqlite as _sqlite
from sqlalchemy.sql import ClauseElement
from tgrun import sql as _sql
from tgrun.errors import host_call
from wit_world.imports import sql as _host

from ..exceptions import ClientRestartError, client_call
from .base_client import BaseClient

__all__ = ["MySQLClient"]

# A plain-string statement that starts so answers rows.
_ROW_STATEMENTS = ("SELECT", "WITH", "SHOW", "PRAGMA", "EXPLAIN", "DESCRIBE", "VALUES")

# Dialects made once (at build time: they are in the component's snapshot), with `?`
# placeholders, as the runner's SQL client takes them.
_DIALECTS = {
    "mysql": _mysql.dialect(paramstyle="qmark"),
    "sqlite": _sqlite.dialect(paramstyle="qmark"),
}


def _dialect():
    name = client_call(_sql.dialect)
    try:
        return _DIALECTS[name]
    except KeyError:
        raise ClientRestartError(f"the runner's database speaks {name!r}, which this client does not know") from None


def _raw(value: "_host.Value") -> Any:
    """A column value as a DBAPI driver hands it to SQLAlchemy: JSON as its text, a
    date-time as a naive UTC ``datetime``."""
    if isinstance(value, _host.Value_Null):
        return None
    if isinstance(value, _host.Value_Datetime):
        return _sql.datetime_ms(value.value).replace(tzinfo=None)
    return value.value


class RowProxy:
    """One row: by position (``row[0]``), by name (``row["name"]``, ``row.name``), and a
    mapping (``dict(row)``, ``row.keys()``, ``row.items()``), as SQLAlchemy 1.3's."""

    __slots__ = ("_keys", "_values", "_index")

    def __init__(self, keys: List[str], values: List[Any], index: Dict[str, int]):
        self._keys, self._values, self._index = keys, values, index

    def keys(self) -> List[str]:
        return list(self._keys)

    def values(self) -> List[Any]:
        return list(self._values)

    def items(self):
        return list(zip(self._keys, self._values))

    def __getitem__(self, key):
        if isinstance(key, (int, slice)):
            return self._values[key]
        name = getattr(key, "name", key)
        try:
            return self._values[self._index[name]]
        except KeyError:
            raise KeyError(f"no column {name!r} in this row (it has: {', '.join(self._keys)})") from None

    def __getattr__(self, name: str):
        try:
            return self._values[self._index[name]]
        except KeyError:
            raise AttributeError(name) from None

    def __contains__(self, key) -> bool:
        return key in self._index

    def __iter__(self):
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __eq__(self, other) -> bool:
        other_values = other._values if isinstance(other, RowProxy) else other
        return tuple(self._values) == tuple(other_values)

    def __repr__(self) -> str:
        return repr(tuple(self._values))


class ResultProxy:
    """A statement's answer. Rows are read at once (the runner caps how many), so the
    ``fetch*`` methods answer from memory; they are awaitable, as aiomysql's."""

    def __init__(self, keys: List[str], rows: List[RowProxy], rowcount: int, lastrowid: Optional[int]):
        self._keys = keys
        self._rows = rows
        self._next = 0
        self.rowcount = rowcount
        self.lastrowid = lastrowid
        self.returns_rows = bool(keys)

    def keys(self) -> List[str]:
        return list(self._keys)

    async def fetchall(self) -> List[RowProxy]:
        rows, self._next = self._rows[self._next :], len(self._rows)
        return rows

    async def fetchone(self) -> Optional[RowProxy]:
        if self._next >= len(self._rows):
            return None
        self._next += 1
        return self._rows[self._next - 1]

    async def fetchmany(self, size: int = 1) -> List[RowProxy]:
        rows = self._rows[self._next : self._next + size]
        self._next += len(rows)
        return rows

    async def first(self) -> Optional[RowProxy]:
        row = await self.fetchone()
        self._next = len(self._rows)
        return row

    async def scalar(self) -> Any:
        row = await self.first()
        return None if row is None else row[0]

    def __aiter__(self):
        return self

    async def __anext__(self) -> RowProxy:
        row = await self.fetchone()
        if row is None:
            raise StopAsyncIteration
        return row


class _Connection:
    """The DBAPI-level connection under a lease: ``commit`` and ``rollback``."""

    def __init__(self, lease: "SAConnection"):
        self._lease = lease

    async def commit(self) -> None:
        tx, self._lease._tx = self._lease._tx, None
        if tx is not None:
            client_call(host_call, _host.Transaction.commit, tx)

    async def rollback(self) -> None:
        self._lease._rollback()


class SAConnection:
    """A leased connection running SQLAlchemy core statements (see the module)."""

    def __init__(self):
        self._dialect = _dialect()
        self._tx = None
        self.connection = _Connection(self)

    def _transaction(self):
        if self._tx is None:
            self._tx = client_call(host_call, _host.begin)
        return self._tx

    def _rollback(self) -> None:
        tx, self._tx = self._tx, None
        if tx is not None:
            client_call(host_call, _host.Transaction.rollback, tx)

    async def execute(self, statement, *multiparams, **params) -> ResultProxy:
        if isinstance(statement, str):
            values = list(multiparams[0]) if multiparams else []
            return self._run(statement, values, None, [], returns_rows=None)
        if not isinstance(statement, ClauseElement):
            raise ValueError(f"cannot execute a {type(statement).__name__}: give a SQLAlchemy statement or a string")
        bound = dict(multiparams[0]) if multiparams else {}
        bound.update(params)
        compiled = statement.compile(dialect=self._dialect)
        values = compiled.construct_params(bound or None)
        processors = compiled._bind_processors
        positional = []
        for name in compiled.positiontup:
            value = values[name]
            process = processors.get(name)
            # A date-time goes as the runner's own value, stored as the runner stores every
            # job's (SQLite's dialect would write its own text format).
            if process is not None and value is not None and not isinstance(value, datetime.datetime):
                value = process(value)
            positional.append(value)
        is_dml = compiled.isinsert or compiled.isupdate or compiled.isdelete
        columns = [] if is_dml else list(compiled._result_columns)
        return self._run(str(compiled), positional, compiled, columns, returns_rows=not is_dml)

    def _run(self, text: str, values: Sequence[Any], compiled, columns, returns_rows) -> ResultProxy:
        tx = self._transaction()
        wit_values = [_sql.to_wit(v, f"parameter {i + 1}") for i, v in enumerate(values)]
        if returns_rows is None:
            words = text.split(None, 1)
            returns_rows = bool(words) and words[0].upper() in _ROW_STATEMENTS
        if not returns_rows:
            r = client_call(host_call, tx.execute, text, wit_values)
            return ResultProxy([], [], r.rows_affected, r.last_insert_id)
        rs = client_call(host_call, tx.query, text, wit_values)
        keys = list(rs.columns)
        processors = [None] * len(keys)
        for i, col in enumerate(columns[: len(keys)]):
            # (key name, name, objects, type) for each selected column.
            type_ = col[3]
            processors[i] = type_._cached_result_processor(self._dialect, None)
        index = {k: i for i, k in enumerate(keys)}
        rows = []
        for raw in rs.rows:
            values = []
            for process, v in zip(processors, raw):
                v = _raw(v)
                # A value the runner already gives typed (a date-time) needs no parsing.
                if process is not None and v is not None and not isinstance(v, datetime.datetime):
                    v = process(v)
                values.append(v)
            rows.append(RowProxy(keys, values, index))
        return ResultProxy(keys, rows, len(rows), None)


class _Lease:
    def __init__(self):
        self._conn: Optional[SAConnection] = None

    async def __aenter__(self) -> SAConnection:
        self._conn = SAConnection()
        return self._conn

    async def __aexit__(self, exc_type, exc, tb) -> bool:
        if self._conn is not None:
            self._conn._rollback()
        return False


class MySQLClient(BaseClient):
    """The database client; ``lease()`` hands out a connection."""

    def lease(self) -> _Lease:
        """``async with MySQLClient().lease() as conn:`` a connection for the block."""
        return _Lease()
