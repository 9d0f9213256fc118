"""Routes in Python: a tglib service's ``routes.py`` (an aiohttp ``RouteTableDef``, from
the guest's aiohttp shim) answered by the component's ``handle`` export. The runner's
HTTP server takes the request for a configured route; a fresh instance finds the handler
whose method and path match (``{name}`` parts become ``request.match_info``), awaits it if
it is ``async def``, and answers its ``web.Response``; errors are answered as tglib's
middleware answers them (see :func:`handle`)."""

import inspect
import logging
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


def handle(req, prepare=None) -> "_http.Response":
    """Answers one request (the WIT ``handle``) as tglib's ``error_middleware`` does: a
    raised ``web.HTTPError`` (4xx, 5xx) is answered ``{"status": "error", "message": its
    text}`` with its status; any other exception is logged with its traceback (the run's
    log, in the history) and answered 500 with tglib's fixed message, so no traceback
    reaches the client. Other raised ``web.HTTPException`` s (2xx, 3xx) are answers.
    ``prepare``, if given, runs first, under the same rules (a service's ``main()``)."""
    from aiohttp import web

    try:
        if prepare is not None:
            prepare()
        answer = _answer(web, req)
    except web.HTTPError as e:
        answer = web.json_response({"status": "error", "message": e.text}, status=e.status)
    except web.HTTPException as e:
        answer = e
    except BaseException as e:  # SystemExit too: under tglib it would take the server down
        from ._export import _job_frames

        # As tglib's logging.exception, with the service's frames only.
        trace = "".join(_job_frames(e).format()).rstrip()
        logging.getLogger("tglib").error("Error handling request\n%s", trace)
        answer = web.json_response(
            {"status": "error", "message": "Server got itself in trouble"}, status=500
        )
    return _wit_response(answer)


def _answer(web, req):
    # The handler's answer, or what it raised; the router's 404 and 405 are raised too, as
    # aiohttp's router raises them inside the middlewares.
    allowed = []
    for route in _routes:
        info = route.match(req.method, req.path)
        if info is None:
            if route.match(route.method, req.path) is not None:
                allowed.append(route.method)
            continue
        request = web.Request(req.method, req.path, req.query, req.headers, req.body, info)
        answer = route.handler(request)
        if inspect.iscoroutine(answer):
            answer = _aio.run(answer)
        if not isinstance(answer, web.StreamResponse):
            raise TypeError(
                f"route {route.method} {route.path}: the handler answered a "
                f"{type(answer).__name__}, not a web.Response"
            )
        return answer
    if allowed:
        raise web.HTTPMethodNotAllowed(headers={"Allow": ", ".join(allowed)})
    raise web.HTTPNotFound()
