"""The tglib package for guests, on the machine's Python: the expectations of tglib's own
``tests/prometheus_tests.py`` (names, arguments, answers, exceptions), with the generated
bindings' host functions replaced by fakes."""

import json
import re
import unittest
from unittest import mock

from componentize_py_types import Err, Ok
from wit_world.imports import api_service as api_host
from wit_world.imports import prometheus as prom_host
from wit_world.imports import types as wit

import tgrun
from tglib.clients import APIServiceClient
from tglib.clients.prometheus_client import PrometheusClient, PrometheusMetric, consts, ops
from tglib.exceptions import ClientRestartError, ClientRuntimeError, ClientStoppedError
from tgrun import _aio, _export

_EMPTY = json.dumps({"status": "success", "data": {"resultType": "matrix", "result": []}})


def run(coro):
    """Awaits ``coro`` on the sandbox's own loop, as a job's run does."""
    return _aio.run(coro)


class FakeProm:
    """Stands in for the host's Prometheus functions; records every call."""

    def __init__(self):
        self.calls = []

    def __enter__(self):
        self.old = {n: getattr(prom_host, n) for n in ("query_latest", "query_range", "query_range_raw", "write_metrics")}
        prom_host.query_latest = lambda q, t: self.record("query", {"query": q, "time": t})
        prom_host.query_range = lambda r: self.record("query_range", self.range(r))
        prom_host.query_range_raw = lambda r: self.record("query_range_raw", self.range(r))
        prom_host.write_metrics = lambda ms: self.record("write", ms)
        return self

    def __exit__(self, *exc):
        for n, f in self.old.items():
            setattr(prom_host, n, f)

    @staticmethod
    def range(r):
        return {"query": r.query, "step": r.step, "start": r.start, "end": r.end}

    def record(self, what, params):
        self.calls.append((what, params))
        return _EMPTY if what != "write" else None


class Prometheus(unittest.TestCase):
    def setUp(self):
        self.client = PrometheusClient(timeout=1)
        PrometheusClient.poll_metrics()  # nothing left from another test

    def test_the_runner_starts_the_client(self):
        with self.assertRaises(ClientRestartError):
            run(self.client.start({"prometheus": {"host": "prometheus", "port": 9090}}))
        run(self.client.stop())

    def test_normalize(self):
        for raw, normalized in {
            "foo.bar": "foo_bar",
            "foobar": "foobar",
            "//foobar": "__foobar",
            "[foobar]": "_foobar_",
            "foo-bar": "foo_bar",
            "foo_bar": "foo_bar",
            "f.o-o/b[a]r": "f_o_o_b_a_r",
        }.items():
            self.assertEqual(self.client.normalize(raw), normalized)

    def test_format_query(self):
        q = self.client.format_query("metric", {"foo": "bar", "quux": True}, {"baz": "qux", "quuz": False})
        self.assertEqual(q, 'metric{foo="bar",quux="true",baz!="qux",quuz!="false"}')
        q = self.client.format_query("metric", {"foo": re.compile("bar|baz")}, {"qux": re.compile("quux|quuz")})
        self.assertEqual(q, 'metric{foo=~"bar|baz",qux!~"quux|quuz"}')
        self.assertEqual(self.client.format_query("1-metric"), "1-metric")
        # tglib normalizes the label part, values included.
        self.assertEqual(PrometheusClient.format_query("m", {"link": "a-b.c"}), 'm{link="a_b_c"}')

    def test_ops(self):
        q = self.client.format_query("metric", {"foo": "bar"})
        for op in ("avg_over_time", "count_over_time", "delta", "max_over_time", "rate", "resets"):
            self.assertEqual(getattr(ops, op)(q, "24h"), f'{op}(metric{{foo="bar"}} [24h])')
        self.assertEqual(ops.quantile_over_time(q, "1h", 0.5), 'quantile_over_time(0.5, metric{foo="bar"} [1h])')
        self.assertEqual(ops.max_by("m", consts.link_name), "max by (linkName) (m)")
        self.assertEqual(ops.diff_on("a", "b", "linkName"), "a - on (linkName) b")

    def test_query_range(self):
        params = {"query": "foo", "step": "30s", "start": 0, "end": 100}
        with FakeProm() as fake:
            answer = run(self.client.query_range(**params))
            run(self.client.query_range_ts(**params))
            with mock.patch("time.time", return_value=100):
                run(self.client.query_range(query="foo", step="30s", start=0))
        self.assertEqual(answer, json.loads(_EMPTY))
        self.assertIsInstance(answer, dict)
        self.assertEqual(fake.calls, [
            ("query_range", {**params}),
            ("query_range_raw", {**params, "query": "timestamp(foo)"}),
            ("query_range", {**params, "end": 100}),
        ])

    def test_invalid_ranges_are_value_errors_and_reach_no_server(self):
        with FakeProm() as fake:
            for params in (
                {"query": "foo", "step": "30s", "start": 100, "end": 0},
                {"query": "foo", "step": "bar", "start": 0, "end": 100},
            ):
                for call in (self.client.query_range, self.client.query_range_ts, self.client.query_range_raw):
                    with self.assertRaises(ValueError):
                        run(call(**params))
            with self.assertRaises(ValueError):
                PrometheusClient.duration2seconds("5y")
        self.assertEqual(fake.calls, [])
        self.assertEqual(PrometheusClient.duration2seconds("2m"), 120)

    def test_query_latest(self):
        with FakeProm() as fake:
            run(self.client.query_latest(query="foo"))
            run(self.client.query_latest_ts(query="foo"))
            run(self.client.query_latest(query="foo", time=10))
        self.assertEqual(fake.calls, [
            ("query", {"query": "foo", "time": None}),
            ("query", {"query": "timestamp(foo)", "time": None}),
            ("query", {"query": "foo", "time": 10.0}),
        ])

    def test_write_and_poll_metrics(self):
        with FakeProm() as fake:
            self.client.write_metrics([PrometheusMetric(name="foo", labels={"number": i}, value=i, time=1) for i in range(10)])
            self.assertEqual(len(self.client.poll_metrics()), 10)
            self.assertEqual(len(self.client.poll_metrics()), 0)
            self.client.write_metrics([PrometheusMetric(name="foo", labels={"bar": "baz"}, value=100)])
            self.assertEqual(self.client.poll_metrics(), ['foo{bar="baz"} 100'])
            self.client.write_metrics([PrometheusMetric(name="foo", labels={"bar": "baz"}, value=100, time=1)])
            self.client.write_metrics([PrometheusMetric(name="foo", labels={"bar": "baz"}, value=101, time=2)])
            self.assertEqual(self.client.poll_metrics(), ['foo{bar="baz"} 101 2'])
            self.assertFalse(self.client.poll_metrics())
        # Every write reached the runner, with its time in ms.
        written = [m for what, ms in fake.calls if what == "write" for m in ms]
        self.assertEqual(len(written), 13)
        self.assertEqual((written[-1].name, written[-1].labels, written[-1].value, written[-1].time_ms), ("foo", [("bar", "baz")], 101.0, 2))

    def test_written_series_are_tglibs_booleans_and_normalized_labels(self):
        # tglib's cache key is format_query(name, labels): the series Prometheus scrapes.
        with FakeProm() as fake:
            self.client.write_metrics([
                PrometheusMetric("node_up", {"pop": True, "cn": False, "network": "tg-east.1", "link-dir": "a/b"}, 1, 5)
            ])
            self.assertEqual(
                self.client.poll_metrics(),
                ['node_up{pop="true",cn="false",network="tg_east_1",link_dir="a_b"} 1 5'],
            )
        (_, [m]), = fake.calls
        self.assertEqual(
            dict(m.labels), {"pop": "true", "cn": "false", "network": "tg_east_1", "link_dir": "a_b"}
        )

    def test_a_none_value_is_left_out_and_named_the_rest_written(self):
        with FakeProm() as fake, self.assertLogs("tglib", "WARNING") as logged:
            self.client.write_metrics([
                PrometheusMetric("health", {"link": "l1"}, None, 5),
                PrometheusMetric("health", {"link": "l2"}, 2, 5),
            ])
        (_, written), = fake.calls
        self.assertEqual([dict(m.labels) for m in written], [{"link": "l2"}])
        self.assertIn('health{link="l1"} has no value (None)', logged.output[0])
        self.assertEqual(self.client.poll_metrics(), ['health{link="l2"} 2 5'])

    def test_failures_are_tglibs_exceptions_and_keep_the_runners_kind(self):
        old = prom_host.query_latest
        try:
            prom_host.query_latest = lambda q, t: (_ for _ in ()).throw(Err(wit.Error_Upstream("connection refused")))
            with self.assertRaises(ClientRuntimeError) as e:
                run(self.client.query_latest("foo"))
            self.assertIn("connection refused", str(e.exception))
            self.assertIsInstance(e.exception.__cause__, tgrun.Upstream)
            prom_host.query_latest = lambda q, t: (_ for _ in ()).throw(Err(wit.Error_NotConfigured("no prometheus")))
            with self.assertRaises(ClientStoppedError):
                run(self.client.query_latest("foo"))
        finally:
            prom_host.query_latest = old


class ApiService(unittest.TestCase):
    def setUp(self):
        self.seen = []
        self.old = (api_host.request, api_host.request_all)

        def request(network, endpoint, params, timeout):
            self.seen.append((network, endpoint, json.loads(params), timeout))
            return '{"ok": true}'

        api_host.request = request
        api_host.request_all = lambda endpoint, params, timeout: [
            api_host.NetworkResult("a", Ok('{"name": "a"}')),
            api_host.NetworkResult("b", Err(wit.Error_Upstream("503 from b"))),
        ]

    def tearDown(self):
        api_host.request, api_host.request_all = self.old

    def test_network_names_as_tglibs_a_collection_of_the_nms_networks(self):
        old = api_host.network_names
        try:
            api_host.network_names = lambda: ["net_b", "net_a"]
            names = APIServiceClient.network_names()
            self.assertEqual(list(names), ["net_b", "net_a"])
            self.assertIn("net_a", names)
            self.assertEqual(len(APIServiceClient(timeout=1).network_names()), 2)
            api_host.network_names = lambda: (_ for _ in ()).throw(Err(wit.Error_NotConfigured("no api service")))
            with self.assertRaises(ClientStoppedError):
                APIServiceClient.network_names()
        finally:
            api_host.network_names = old

    def test_request_and_gather(self):
        import asyncio

        client = APIServiceClient(timeout=2)

        async def both():
            return await asyncio.gather(
                client.request("n1", "getTopology"), client.request("n2", "getCtrlConfig", {"x": 1})
            )

        self.assertEqual(run(both()), [{"ok": True}, {"ok": True}])
        self.assertEqual(self.seen, [("n1", "getTopology", {}, 2000), ("n2", "getCtrlConfig", {"x": 1}, 2000)])

    def test_a_failed_network_raises_or_comes_back_as_a_value(self):
        client = APIServiceClient(timeout=1)
        with self.assertRaises(ClientRuntimeError) as e:
            run(client.request_all("getTopology"))
        self.assertIn("503 from b", str(e.exception))
        got = run(client.request_all("getTopology", return_exceptions=True))
        self.assertEqual(got["a"], {"name": "a"})
        self.assertIsInstance(got["b"], ClientRuntimeError)
        self.assertIsInstance(got["b"].__cause__, tgrun.Upstream)

    def test_every_failure_of_a_network_is_a_client_runtime_error_as_tglibs(self):
        # tgnms' producers test `isinstance(answer, ClientRuntimeError)` and catch it.
        api_host.request_all = lambda endpoint, params, timeout: [
            api_host.NetworkResult("c", Err(wit.Error_NotConfigured("no controller for c"))),
        ]
        got = run(APIServiceClient(timeout=1).request_all("getTopology", return_exceptions=True))
        self.assertIsInstance(got["c"], ClientRuntimeError)

        def unknown(network, endpoint, params, timeout):
            raise Err(wit.Error_InvalidArgument(f"unknown network '{network}'"))

        api_host.request = unknown
        with self.assertRaises(ClientRuntimeError) as e:
            run(APIServiceClient(timeout=1).request("nope", "getTopology"))
        self.assertIn("unknown network 'nope'", str(e.exception))


class Jobs(unittest.TestCase):
    def test_an_async_tglib_job_runs_and_its_failure_keeps_the_kind(self):
        async def add_x(start_time_ms, metric_name, x):
            client = PrometheusClient(timeout=2)
            response = await client.query_latest(client.format_query(metric_name))
            if response["status"] != "success":
                return
            raise ClientRuntimeError("stop here")

        with FakeProm():
            kwargs = _export._arguments(add_x, _export.Ctx("add_x", "r", "p", 5), '{"metric_name": "foo", "x": 5}')
            with self.assertRaises(ClientRuntimeError):
                _export._call(add_x, kwargs)

    def test_a_failed_calls_message_shows_the_jobs_code_only(self):
        async def reads(start_time_ms):
            await PrometheusClient(timeout=1).query_latest("foo")

        old = prom_host.query_latest
        prom_host.query_latest = lambda q, t: (_ for _ in ()).throw(Err(wit.Error_Upstream("refused")))
        try:
            _export._call(reads, {"start_time_ms": 1})
        except ClientRuntimeError as e:
            text = _export._message(e)
        finally:
            prom_host.query_latest = old
        self.assertTrue(text.startswith("ClientRuntimeError: refused\n"), text)
        self.assertIn("in reads", text)
        for theirs in ("prometheus_client.py", "exceptions.py", "errors.py", "asyncio", "direct cause"):
            self.assertNotIn(theirs, text)


class Utils(unittest.TestCase):
    def test_deep_update_as_tglibs(self):
        from tglib.utils.dict import deep_update

        src = {"foo": {"bar": "baz", "l": [3]}, "new": {"x": [1]}}
        dst = {"foo": {"bar": "qux", "quux": "quuz", "l": [1, 2]}}
        deep_update(dst, src)
        self.assertEqual(dst, {"foo": {"bar": "baz", "quux": "quuz", "l": [3]}, "new": {"x": [1]}})
        dst["new"]["x"].append(2)
        self.assertEqual(src["new"]["x"], [1], "dst shares nothing with src")
        dst = {"foo": {"l": [1, 2]}, "s": "a"}
        deep_update(dst, {"foo": {"l": [3]}, "s": {"now": "a dict"}}, join_lists=True)
        self.assertEqual(dst, {"foo": {"l": [1, 2, 3]}, "s": {"now": "a dict"}})

    def test_format_address(self):
        from tglib.utils.ip import format_address

        self.assertEqual(format_address("::1", 80), "[::1]:80")
        self.assertEqual(format_address("fd00::1", 8080), "[fd00::1]:8080")
        self.assertEqual(format_address("10.0.0.1", 80), "10.0.0.1:80")
        self.assertEqual(format_address("nms", 80), "nms:80")


if __name__ == "__main__":
    unittest.main()
