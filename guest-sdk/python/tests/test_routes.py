"""A tglib service's routes.py (aiohttp's RouteTableDef, the guest's aiohttp shim) answered
through the component's ``handle``, on the machine's Python: the example service's own
``GET /topology`` over a real sqlite3 playing the runner's database."""

import datetime
import json
import unittest

from aiohttp import web
from wit_world.imports import http_types

from tests.test_tglib_mysql import SqliteHost, save
from tgrun import _aio, _handler


def request(method, path, query=(), headers=(), body=b""):
    return http_types.Request(method, path, list(query), list(headers), body)


class Routes(unittest.TestCase):
    def setUp(self):
        import tglib_service.routes

        self.old = list(_handler._routes)
        _handler._routes.clear()
        import sys, types

        sys.modules["app_for_routes"] = types.ModuleType("app_for_routes")
        _handler.export_routes(tglib_service.routes, "app_for_routes")

    def tearDown(self):
        _handler._routes[:] = self.old

    def test_the_seeds_topology_route(self):
        with SqliteHost():
            _aio.run(save(1_600_000_000_000, {"net1": {"nodes": [1]}}))
            r = _handler.handle(request("GET", "/topology", [("start_dt", "2020-01-01T00:00:00")]))
            self.assertEqual(r.status, 200)
            self.assertIn(("content-type", "application/json; charset=utf-8"), r.headers)
            self.assertEqual(json.loads(r.body), [{"topology": {"nodes": [1]}}])
            r = _handler.handle(request("GET", "/topology", [("start_dt", "2021-01-01")]))
            self.assertEqual(json.loads(r.body), [])
        # tglib's error_middleware answers a raised HTTPError as JSON, word for word.
        r = _handler.handle(request("GET", "/topology"))
        self.assertEqual(
            (r.status, r.body),
            (400, b'{"status": "error", "message": "\'start_dt\' is missing from query string"}'),
        )
        self.assertIn(("content-type", "application/json; charset=utf-8"), r.headers)
        r = _handler.handle(request("GET", "/topology", [("start_dt", "bar")]))
        self.assertEqual(
            (r.status, json.loads(r.body)),
            (400, {"status": "error", "message": "'start_dt' is invalid ISO 8601: 'bar'"}),
        )

    def test_unknown_paths_and_methods(self):
        r = _handler.handle(request("GET", "/nope"))
        self.assertEqual((r.status, json.loads(r.body)), (404, {"status": "error", "message": "404: Not Found"}))
        r = _handler.handle(request("POST", "/topology"))
        self.assertEqual(
            (r.status, json.loads(r.body)), (405, {"status": "error", "message": "405: Method Not Allowed"})
        )


class Shim(unittest.TestCase):
    def test_a_get_route_answers_head_unless_told_not_to(self):
        routes = web.RouteTableDef()

        @routes.get("/a")
        def a(req):
            return web.Response(text="a")

        @routes.get("/b", allow_head=False)
        def b(req):
            return web.Response(text="b")

        first, second = routes._items
        self.assertEqual(first.match("HEAD", "/a"), {})
        self.assertIsNone(second.match("HEAD", "/b"))
        self.assertIsNone(first.match("POST", "/a"))

    def test_the_client_sends_through_the_runner_as_aiohttp(self):
        import asyncio

        import aiohttp
        from componentize_py_types import Err
        from wit_world.imports import http as host
        from wit_world.imports import types

        sent = []

        def fake_send(req):
            sent.append(req)
            if "refused" in req.url:
                raise Err(types.Error_NotPermitted("http://refused:1 is not among the job's allowed_outbound_hosts"))
            if "slow" in req.url:
                raise Err(types.Error_Upstream("timed out after 2000 ms waiting for http://slow:1"))
            if "down" in req.url:
                raise Err(types.Error_Upstream("http://down:1: connection refused"))
            status, reason = (404, "Not Found") if "missing" in req.url else (200, "OK")
            return host.OutboundResponse(
                status, reason, [("Content-Type", "application/json; charset=utf-8")], b'{"a": 1}', req.url
            )

        old, host.send = host.send, fake_send
        try:

            async def go():
                out = {}
                async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as s:
                    async with s.get("http://q:8086/x?k=1", params={"n": "a b", "p": 2}) as r:
                        out["get"] = (r.status, r.reason, await r.json(), r.headers["content-type"], r.ok)
                    r = await s.post("http://q:8086/y", json={"b": 2}, headers={"X-T": "1"})
                    out["post"] = json.loads(await r.read())
                    for url, caught in [
                        ("http://refused:1/", aiohttp.ClientConnectionError),
                        ("http://slow:1/", asyncio.TimeoutError),
                        ("http://down:1/", aiohttp.ClientError),
                    ]:
                        with self.assertRaises(caught):
                            await s.get(url)
                    r = await s.get("http://q:8086/missing")
                    with self.assertRaises(aiohttp.ClientResponseError) as e:
                        r.raise_for_status()
                    out["missing"] = (e.exception.status, e.exception.message)
                return out

            out = _aio.run(go())
        finally:
            host.send = old
        self.assertEqual(out["get"], (200, "OK", {"a": 1}, "application/json; charset=utf-8", True))
        self.assertEqual(sent[0].method, "GET")
        self.assertEqual(sent[0].url, "http://q:8086/x?k=1&n=a+b&p=2")
        self.assertEqual(sent[0].timeout_ms, 2000)
        self.assertEqual(sent[1].body, b'{"b": 2}')
        self.assertIn(("Content-Type", "application/json"), sent[1].headers)
        self.assertIn(("X-T", "1"), sent[1].headers)
        self.assertEqual(out["missing"], (404, "Not Found"))

    def test_requests_and_responses_as_aiohttp(self):
        routes = web.RouteTableDef()
        seen = {}

        @routes.post("/items/{item_id}")
        async def add(req: web.Request) -> web.Response:
            seen["id"] = req.match_info["item_id"]
            seen["json"] = await req.json()
            seen["q"] = (req.query.get("a"), req.rel_url.query.getall("b"), req.query.get("z", "d"))
            seen["auth"] = req.headers.get("X-Token")
            return web.Response(status=201, text="made")

        @routes.get("/fail")
        def fail(req):
            raise web.HTTPForbidden(text="no")

        @routes.get("/moved")
        def moved(req):
            raise web.HTTPFound(headers={"Location": "/there"})

        @routes.get("/boom")
        async def boom(req):
            raise ZeroDivisionError("secret detail")

        @routes.get("/dict")
        def not_a_response(req):
            return {"a": 1}

        _handler_routes = list(_handler._routes)
        _handler._routes[:] = list(routes)
        try:
            r = _handler.handle(
                request("POST", "/items/42", [("a", "1"), ("b", "2"), ("b", "3")], [("x-token", "t")], b'{"k": 1}')
            )
            self.assertEqual((r.status, r.body), (201, b"made"))
            self.assertEqual(seen, {"id": "42", "json": {"k": 1}, "q": ("1", ["2", "3"], "d"), "auth": "t"})
            r = _handler.handle(request("GET", "/fail"))
            self.assertEqual((r.status, r.body), (403, b'{"status": "error", "message": "no"}'))
            self.assertEqual(_handler.handle(request("POST", "/items")).status, 404)
            # A raised 2xx or 3xx is the answer itself, as aiohttp sends it.
            r = _handler.handle(request("GET", "/moved"))
            self.assertEqual((r.status, dict(r.headers)["location"]), (302, "/there"))
            # Anything else: tglib's fixed 500, the traceback in the run's log only.
            with self.assertLogs("tglib", "ERROR") as logged:
                r = _handler.handle(request("GET", "/boom"))
            self.assertEqual(
                (r.status, r.body), (500, b'{"status": "error", "message": "Server got itself in trouble"}')
            )
            self.assertNotIn(b"secret", r.body)
            self.assertIn("Error handling request", logged.output[0])
            self.assertIn("ZeroDivisionError: secret detail", logged.output[0])
            self.assertIn("Traceback", logged.output[0])
            # An answer that is not a response is the handler's mistake: a 500 as well.
            with self.assertLogs("tglib", "ERROR") as logged:
                self.assertEqual(_handler.handle(request("GET", "/dict")).status, 500)
            self.assertIn("not a web.Response", logged.output[0])
            # What runs before the handler (a service's main()) fails as the handler would.
            def main_fails():
                raise KeyError("metrics")

            with self.assertLogs("tglib", "ERROR") as logged:
                r = _handler.handle(request("POST", "/items/1", body=b"{}"), main_fails)
            self.assertEqual(r.status, 500)
            self.assertNotIn("metrics", r.body.decode())
            self.assertIn("KeyError: 'metrics'", logged.output[0])
        finally:
            _handler._routes[:] = _handler_routes

    def test_json_response_and_exceptions(self):
        r = web.json_response({"when": datetime.datetime(2020, 1, 2)}, dumps=lambda d: json.dumps(d, default=str))
        self.assertEqual(r.body, b'{"when": "2020-01-02 00:00:00"}')
        self.assertEqual(r.headers["Content-Type"], "application/json; charset=utf-8")
        e = web.HTTPNotFound()
        self.assertEqual((e.status, e.text), (404, "404: Not Found"))
        self.assertIsInstance(e, Exception)
        self.assertTrue(issubclass(web.HTTPBadRequest, web.HTTPClientError))


if __name__ == "__main__":
    unittest.main()
