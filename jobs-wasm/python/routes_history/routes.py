"""The fixture service's routes, as tgnms' services write theirs."""

import json
from datetime import datetime
from functools import partial

from aiohttp import web
from tglib.clients import APIServiceClient

from .utils.db import latest_routes, node_routes

routes = web.RouteTableDef()


def custom_serializer(obj) -> str:
    if isinstance(obj, datetime):
        return datetime.isoformat(obj)
    return str(obj)


@routes.get("/routes/history")
async def handle_get_routes_history(request: web.Request) -> web.Response:
    network_name = request.rel_url.query.get("network_name")
    if network_name is None:
        raise web.HTTPBadRequest(text="Missing required 'network_name' param")
    if network_name not in APIServiceClient.network_names():
        raise web.HTTPBadRequest(text=f"Invalid network name: {network_name}")

    rows = await latest_routes(network_name)
    return web.json_response(
        [dict(row) for row in rows], dumps=partial(json.dumps, default=custom_serializer)
    )


@routes.get("/routes/node/{node_name}")
async def handle_get_node_routes(request: web.Request) -> web.Response:
    rows = await node_routes(request.match_info["node_name"])
    if not rows:
        raise web.HTTPNotFound(text=f"No routes of node {request.match_info['node_name']}")
    return web.json_response(
        {"node_name": request.match_info["node_name"], "hops": [row.hops for row in rows]}
    )


@routes.get("/routes/stats")
async def handle_get_routes_stats(request: web.Request) -> web.Response:
    # A bug a real service could ship: the key is never there.
    return web.json_response({"count": request.rel_url.query["count"]})
