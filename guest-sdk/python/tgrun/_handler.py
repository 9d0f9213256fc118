"""Routes in Python: a tglib service's ``routes.py`` (an aiohttp ``RouteTableDef``, from
the guest's aiohttp shim) answered by the component's ``handle`` export. The runner's
HTTP server takes the request for a configured route; a fresh instance finds the handler
whose method and path match (``{name}`` parts become ``request.match_info``), awaits it if
it is ``async def``, and answers its ``web.Response``; a raised ``web.HTTP*`` exception
answers its status, any other exception is the route's error (500)."""

import inspect
from typing import List

from . import _aio

try:  # the `service` world's HTTP types; a job-only component has none
    from wit_world.imports import http_types as _http
except ImportError:  # pragma: no cover (job world)
    _http = None

_routes: List = []


def export_routes(module, app_module: str) -> None:
    """Exports every route of ``module``'s route tables (tglib's ``routes = web.RouteTableDef()``)
    as this component's routes. ``app_module`` is the module componentize-py builds from."""
    from aiohttp import web

    from ._export import _expose

    tables = [v for v in vars(module).values() if isinstance(v, web.RouteTableDef)]
    for table in tables:
        for route in table:
            _routes.append(route)
            if inspect.iscoroutinefunction(route.handler):
                _aio.prepare()
    if not _routes:
        raise TypeError(f"{module.__name__} has no web.RouteTableDef with a route")
    _expose(app_module)


def _wit_response(r) -> "_http.Response":
    headers = [(str(k).lower(), str(v)) for k, v in r.headers.items()]
    return _http.Response(int(r.status), headers, bytes(r.body))


def handle(req) -> "_http.Response":
    """Answers one request (the WIT ``handle``); raises what the handler raised, but for
    its ``web.HTTPException``, which is its answer."""
    from aiohttp import web

    allowed = []
    for route in _routes:
        info = route.match(req.method, req.path)
        if info is None:
            if route.match(route.method, req.path) is not None:
                allowed.append(route.method)
            continue
        request = web.Request(req.method, req.path, req.query, req.headers, req.body, info)
        try:
            answer = route.handler(request)
            if inspect.iscoroutine(answer):
                answer = _aio.run(answer)
        except web.HTTPException as e:
            answer = e
        if not isinstance(answer, web.StreamResponse):
            raise TypeError(
                f"route {route.method} {route.path}: the handler answered a "
                f"{type(answer).__name__}, not a web.Response"
            )
        return _wit_response(answer)
    if allowed:
        return _wit_response(web.HTTPMethodNotAllowed(headers={"Allow": ", ".join(allowed)}))
    return _wit_response(web.HTTPNotFound(text=f"no route of this component answers {req.path}"))
