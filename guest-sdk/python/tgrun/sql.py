"""The service's SQL database from a job, through the runner's connection pool.

Parameters are Python values (``None``, ``bool``, ``int``, ``float``, ``str``, ``bytes``,
``datetime``, and ``dict``/``list`` for JSON columns) bound to ``?`` placeholders in order.
Rows come back as dicts keyed by column name, with the same types (``DATETIME`` as an
aware UTC ``datetime``, ``JSON`` columns parsed).
"""

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Dict, List, Optional, Sequence

from wit_world.imports import sql as _host

from .errors import InvalidArgument, host_call

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_I64_MAX = 2**63 - 1


def datetime_ms(ms: int) -> datetime:
    """A UTC ``datetime`` from milliseconds since the Unix epoch (e.g. ``start_time_ms``)."""
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc)


def _ms(dt: datetime) -> int:
    # A naive datetime is taken as UTC, as tglib's `datetime.utcfromtimestamp` gives.
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    delta = dt - _EPOCH
    return delta.days * 86_400_000 + delta.seconds * 1000 + delta.microseconds // 1000


def to_wit(value: Any, where: str = "parameter") -> "_host.Value":
    """A Python value as a WIT ``value``."""
    if value is None:
        return _host.Value_Null()
    if isinstance(value, bool):
        return _host.Value_Int(int(value))
    if isinstance(value, int):
        if value > _I64_MAX:
            return _host.Value_Uint(value)
        return _host.Value_Int(value)
    if isinstance(value, float):
        return _host.Value_Float(value)
    if isinstance(value, str):
        return _host.Value_Text(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return _host.Value_Bytes(bytes(value))
    if isinstance(value, datetime):
        return _host.Value_Datetime(_ms(value))
    if isinstance(value, (dict, list)):
        return _host.Value_Json(json.dumps(value))
    raise InvalidArgument(f"{where}: cannot bind a {type(value).__name__} ({value!r})")


def from_wit(value: "_host.Value") -> Any:
    """A WIT ``value`` as a Python value."""
    if isinstance(value, _host.Value_Null):
        return None
    if isinstance(value, _host.Value_Datetime):
        return datetime_ms(value.value)
    if isinstance(value, _host.Value_Json):
        return json.loads(value.value)
    return value.value


def _params(params: Sequence[Any]) -> List["_host.Value"]:
    if isinstance(params, (str, bytes, dict)):
        raise InvalidArgument("params must be a list or tuple of values, one per `?`")
    return [to_wit(p, f"parameter {i + 1}") for i, p in enumerate(params)]


class Rows(list):
    """The rows of a query, each a dict keyed by column name; ``columns`` in order."""

    def __init__(self, columns: List[str], rows: List[Dict[str, Any]]):
        super().__init__(rows)
        self.columns = columns


def _rows(rs: "_host.RowSet") -> Rows:
    cols = list(rs.columns)
    return Rows(cols, [dict(zip(cols, map(from_wit, row))) for row in rs.rows])


@dataclass
class ExecResult:
    """What a statement that returns no rows did."""

    rows_affected: int
    last_insert_id: Optional[int]


def _exec(r: "_host.ExecResult") -> ExecResult:
    return ExecResult(r.rows_affected, r.last_insert_id)


def query(statement: str, params: Sequence[Any] = ()) -> Rows:
    """Runs a statement that returns rows."""
    return _rows(host_call(_host.query, statement, _params(params)))


def execute(statement: str, params: Sequence[Any] = ()) -> ExecResult:
    """Runs a statement that returns no rows."""
    return _exec(host_call(_host.execute, statement, _params(params)))


class Transaction:
    """A transaction on one pooled connection, as a context manager: committed when the
    ``with`` block ends normally, rolled back when it raises."""

    def __init__(self):
        self._tx = host_call(_host.begin)

    def query(self, statement: str, params: Sequence[Any] = ()) -> Rows:
        return _rows(host_call(self._tx.query, statement, _params(params)))

    def execute(self, statement: str, params: Sequence[Any] = ()) -> ExecResult:
        return _exec(host_call(self._tx.execute, statement, _params(params)))

    def commit(self) -> None:
        tx, self._tx = self._tx, None
        host_call(_host.Transaction.commit, tx)

    def rollback(self) -> None:
        tx, self._tx = self._tx, None
        host_call(_host.Transaction.rollback, tx)

    def __enter__(self) -> "Transaction":
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if self._tx is not None:
            if exc_type is None:
                self.commit()
            else:
                self.rollback()
        return False


def transaction() -> Transaction:
    """Starts a transaction: ``with sql.transaction() as tx: tx.execute(...)``."""
    return Transaction()


def dialect() -> str:
    """The dialect of the runner's database: ``mysql`` (MySQL, MariaDB) or ``sqlite`` (the
    embedded default), for a job that compiles statements (SQLAlchemy does)."""
    return host_call(_host.dialect)
