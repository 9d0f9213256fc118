"""The fixture service's queries."""

from datetime import datetime
from typing import Dict, List

from aiomysql.sa.result import RowProxy  # type hints only, as tgnms' services import it
from sqlalchemy import func, insert, select, tuple_
from tglib.clients import MySQLClient

from ..models import RoutesHistory


async def save_routes(start_time_ms: int, rows: List[Dict]) -> None:
    if not rows:
        return
    last_updated = datetime.utcfromtimestamp(start_time_ms / 1e3)
    values = [
        {"network_name": r["network_name"], "node_name": r["node_name"], "hops": r["hops"], "last_updated": last_updated}
        for r in rows
    ]
    async with MySQLClient().lease() as sa_conn:
        await sa_conn.execute(insert(RoutesHistory).values(values))
        await sa_conn.connection.commit()


async def latest_routes(network_name: str) -> List[RowProxy]:
    """Each node's newest row, then every node's oldest (``union_all``), newest first."""
    newest = select([RoutesHistory.node_name, func.max(RoutesHistory.last_updated)]).where(
        RoutesHistory.network_name == network_name
    ).group_by(RoutesHistory.node_name)
    oldest = select([RoutesHistory.node_name, func.min(RoutesHistory.last_updated)]).where(
        RoutesHistory.network_name == network_name
    ).group_by(RoutesHistory.node_name)
    columns = [RoutesHistory.node_name, RoutesHistory.hops, RoutesHistory.last_updated]
    query = (
        select(columns)
        .where(tuple_(RoutesHistory.node_name, RoutesHistory.last_updated).in_(newest))
        .union_all(
            select(columns).where(tuple_(RoutesHistory.node_name, RoutesHistory.last_updated).in_(oldest))
        )
    )
    async with MySQLClient().lease() as sa_conn:
        cursor = await sa_conn.execute(query)
        return await cursor.fetchall()


async def node_routes(node_name: str) -> List[RowProxy]:
    """One node's rows, oldest first."""
    query = (
        select([RoutesHistory.hops])
        .where(RoutesHistory.node_name == node_name)
        .order_by(RoutesHistory.last_updated)
    )
    async with MySQLClient().lease() as sa_conn:
        cursor = await sa_conn.execute(query)
        return await cursor.fetchall()
