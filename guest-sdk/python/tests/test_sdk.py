"""The Python SDK's own logic, on the machine's Python: the generated bindings' host
functions are replaced by fakes that record what the SDK hands the runner."""

import re
import unittest
from datetime import datetime, timezone

from componentize_py_types import Err, Ok
from wit_world.imports import api_service as api_host
from wit_world.imports import prometheus as prom_host
from wit_world.imports import sql as sql_host
from wit_world.imports import types as wit

import tgrun
from tgrun import _export, api_service, prometheus, sql


class FormatQuery(unittest.TestCase):
    def test_as_tglib(self):
        self.assertEqual(prometheus.format_query("foo"), "foo")
        self.assertEqual(
            prometheus.format_query(
                "foo",
                {"a": "x", "b": re.compile("r.*"), "c": True, "n": 3},
                {"d": "y", "e": re.compile("z|w")},
            ),
            'foo{a="x",b=~"r.*",c="true",n="3",d!="y",e!~"z|w"}',
        )

    def test_durations_and_helpers(self):
        self.assertEqual(prometheus.duration2seconds("2m"), 120)
        self.assertEqual(prometheus.duration2seconds("1w"), 604800)
        for bad in ("2", "1.5h", "5y", ""):
            with self.assertRaises(tgrun.InvalidArgument, msg=bad):
                prometheus.duration2seconds(bad)
            # tglib code catches a bad duration as a ValueError.
            with self.assertRaises(ValueError, msg=bad):
                prometheus.duration2seconds(bad)

    def test_promql_helpers_take_tglibs_arguments(self):
        ops = prometheus.ops
        self.assertEqual(ops.rate("foo", "1m"), "rate(foo [1m])")
        self.assertEqual(ops.max_by("foo", "linkName"), "max by (linkName) (foo)")
        self.assertEqual(
            prometheus.sum_by(ops.rate("foo", "1m"), ["site", "node"]),
            "sum by (site, node) (rate(foo [1m]))",
        )
        self.assertEqual(
            ops.quantile_over_time("foo", "1h", 0.9), "quantile_over_time(0.9, foo [1h])"
        )
        self.assertEqual(
            ops.diff_on("a", "b", prometheus.consts.link_name), "a - on (linkName) b"
        )
        self.assertEqual(ops.avg_over_time('m{foo="bar"}', "24h"), 'avg_over_time(m{foo="bar"} [24h])')
        self.assertIs(ops.sum_by, prometheus.sum_by)


class Answers(unittest.TestCase):
    def test_typed_results(self):
        v = prometheus.Response(
            {
                "status": "success",
                "data": {
                    "resultType": "vector",
                    "result": [{"metric": {"__name__": "foo", "a": "x"}, "value": [10.5, "3"]}],
                },
            }
        )
        s = v.vector()[0]
        self.assertEqual((s.time, s.value, s.labels["a"]), (10.5, 3.0, "x"))
        self.assertEqual(v["status"], "success")  # still tglib's dict
        with self.assertRaises(tgrun.Error):
            v.matrix()
        m = prometheus.Response(
            {
                "status": "success",
                "data": {
                    "resultType": "matrix",
                    "result": [{"metric": {}, "values": [[1, "1"], [2, "+Inf"], [3, "NaN"]]}],
                },
            }
        )
        values = m.matrix()[0].values
        self.assertEqual(values[:2], [(1.0, 1.0), (2.0, float("inf"))])
        self.assertNotEqual(values[2][1], values[2][1])  # NaN
        with self.assertRaises(tgrun.Error):
            prometheus.Response({"status": "error", "error": "bad"}).vector()
        with self.assertRaises(tgrun.Error):
            prometheus.Response(
                {"status": "success", "data": {"resultType": "vector", "result": [{"value": 1}]}}
            ).vector()

    def test_calls_reach_the_host_and_errors_become_sdk_errors(self):
        seen = []

        def query_latest(q, t):
            seen.append((q, t))
            return '{"status": "success", "data": {"resultType": "vector", "result": []}}'

        def refuse(metrics):
            raise Err(wit.Error_LimitExceeded("too many series"))

        old = (prom_host.query_latest, prom_host.write_metrics)
        prom_host.query_latest, prom_host.write_metrics = query_latest, refuse
        try:
            self.assertEqual(prometheus.query_latest("foo", 5).vector(), [])
            self.assertEqual(seen, [("foo", 5.0)])
            with self.assertRaises(tgrun.LimitExceeded) as e:
                prometheus.write_metrics([prometheus.PrometheusMetric("m", {}, 1)])
            self.assertEqual(e.exception.kind, "limit-exceeded")
            self.assertEqual(str(e.exception), "too many series")
        finally:
            prom_host.query_latest, prom_host.write_metrics = old

    def test_metric_drops_the_name_label(self):
        m = prometheus.PrometheusMetric("foo_plus_5", {"__name__": "foo", "a": "x"}, 15, 1000)
        self.assertEqual(m, prometheus.PrometheusMetric(name="foo_plus_5", labels={"__name__": "foo", "a": "x"}, value=15, time=1000))
        w = m._to_wit()
        self.assertEqual((w.name, w.labels, w.value, w.time_ms), ("foo_plus_5", [("a", "x")], 15.0, 1000))


class ApiService(unittest.TestCase):
    def setUp(self):
        self.old = api_host.request_all
        api_host.request_all = lambda endpoint, params, timeout: [
            api_host.NetworkResult("a", Ok('{"name": "a"}')),
            api_host.NetworkResult("b", Err(wit.Error_Upstream("503 from b"))),
        ]

    def tearDown(self):
        api_host.request_all = self.old

    def test_failures_raise_or_come_back_as_values(self):
        with self.assertRaises(tgrun.Upstream) as e:
            api_service.request_all("getTopology")
        self.assertIn("b: 503 from b", str(e.exception))
        got = api_service.request_all("getTopology", return_exceptions=True)
        self.assertEqual(got["a"], {"name": "a"})
        self.assertIsInstance(got["b"], tgrun.Upstream)


class Sql(unittest.TestCase):
    def test_values_both_ways(self):
        when = datetime(2026, 3, 29, 1, 30, 15, 250000, tzinfo=timezone.utc)
        cases = [
            (None, sql_host.Value_Null()),
            (True, sql_host.Value_Int(1)),
            (-3, sql_host.Value_Int(-3)),
            (2**63, sql_host.Value_Uint(2**63)),
            (2.5, sql_host.Value_Float(2.5)),
            ("é", sql_host.Value_Text("é")),
            (b"\x00", sql_host.Value_Bytes(b"\x00")),
            (when, sql_host.Value_Datetime(1774747815250)),
            (when.replace(tzinfo=None), sql_host.Value_Datetime(1774747815250)),
            ({"a": [1]}, sql_host.Value_Json('{"a": [1]}')),
        ]
        for value, wire in cases:
            self.assertEqual(sql.to_wit(value), wire, value)
        self.assertEqual(sql.from_wit(sql_host.Value_Datetime(1774747815250)), when)
        self.assertEqual(sql.from_wit(sql_host.Value_Json('{"a": 1}')), {"a": 1})
        with self.assertRaises(tgrun.InvalidArgument) as e:
            sql.execute("INSERT INTO t VALUES (?, ?)", [1, object()])
        self.assertIn("parameter 2", str(e.exception))
        with self.assertRaises(tgrun.InvalidArgument):
            sql.execute("SELECT ?", "not a list")


class Params(unittest.TestCase):
    ctx = _export.Ctx("add_x", "r1", "p", 1000)

    def test_run_key_names_the_due_run(self):
        self.assertEqual(self.ctx.run_key, "p/add_x/1000")
        again = _export.Ctx("add_x", "r2", "p", 1000)
        self.assertEqual(again.run_key, self.ctx.run_key)

    def test_binding(self):
        def add_x(start_time_ms, metric_name, x=1):
            pass

        self.assertEqual(
            _export._arguments(add_x, self.ctx, '{"metric_name": "foo"}'),
            {"start_time_ms": 1000, "metric_name": "foo"},
        )
        for raw, expected in [
            ('{"x": 2}', "missing 'metric_name'"),
            ('{"metric_name": "foo", "y": 1}', "unexpected 'y' (the function takes: metric_name, x)"),
            ('{"metric_name": "foo", "start_time_ms": 1}', "'start_time_ms' is given by the runner"),
            ("[1]", "must be a JSON object, not list"),
            ("{", "not JSON"),
        ]:
            with self.assertRaises(tgrun.InvalidArgument) as e:
                _export._arguments(add_x, self.ctx, raw)
            self.assertIn("params of job 'add_x'", str(e.exception))
            self.assertIn(expected, str(e.exception))

        def anything(ctx, **params):
            pass

        self.assertEqual(
            _export._arguments(anything, self.ctx, '{"a": 1}'), {"ctx": self.ctx, "a": 1}
        )

    def test_async_jobs_are_awaited_and_gather_works(self):
        import asyncio

        seen = []

        async def one(n):
            await asyncio.sleep(0)
            seen.append(n)
            return n * 10

        async def job(start_time_ms, x):
            got = await asyncio.gather(one(x), one(x + 1))
            return got, start_time_ms

        kwargs = _export._arguments(job, self.ctx, '{"x": 1}')
        self.assertEqual(_export._call(job, kwargs), ([10, 20], 1000))
        self.assertEqual(seen, [1, 2])

        async def fails():
            await asyncio.sleep(0)
            raise KeyError("inside")

        with self.assertRaises(KeyError):
            _export._call(fails, {})

    def test_a_jobs_module_is_called_by_job_name(self):
        import types

        module = types.ModuleType("jobs_for_test")
        exec(
            "import json\n"
            "async def add_x(start_time_ms, x):\n    return x + 1\n"
            "def plain():\n    return 'p'\n"
            "def _private():\n    pass\n",
            module.__dict__,
        )
        import sys

        sys.modules["jobs_for_test"] = module
        sys.modules["app_for_test"] = types.ModuleType("app_for_test")
        old = (_export._job, dict(_export._by_name))
        try:
            _export._job = None
            _export._by_name.clear()
            _export.export_jobs(module, "app_for_test")
            self.assertEqual(sorted(_export._by_name), ["add_x", "plain"])
            self.assertEqual(_export._call(_export._function_for("add_x"), {"start_time_ms": 5, "x": 1}), 2)
            with self.assertRaises(tgrun.Error) as e:
                _export._function_for("nope")
            self.assertIn("no job 'nope' (its jobs: add_x, plain)", str(e.exception))
            self.assertIs(sys.modules["app_for_test"].WitWorld, _export._Export)
        finally:
            _export._job = old[0]
            _export._by_name.clear()
            _export._by_name.update(old[1])


class Messages(unittest.TestCase):
    def test_the_exception_first_then_the_traceback(self):
        def inner():
            raise ValueError("boom")

        try:
            inner()
        except ValueError as e:
            text = _export._message(e)
        self.assertTrue(text.startswith("ValueError: boom\n\nTraceback"), text)
        self.assertIn("in inner", text)

    def test_the_sdks_own_frames_are_left_out(self):
        def refuse(metrics):
            raise Err(wit.Error_Upstream("prometheus is down"))

        old = prom_host.write_metrics
        prom_host.write_metrics = refuse
        try:
            prometheus.write_metrics([])
        except tgrun.Upstream as e:
            text = _export._message(e)
        finally:
            prom_host.write_metrics = old
        self.assertTrue(text.startswith("prometheus is down\n"), text)
        self.assertIn("test_the_sdks_own_frames_are_left_out", text)
        self.assertNotIn("host_call", text)
        self.assertNotIn("prometheus.py", text)

    def test_a_module_missing_in_a_run_says_it_must_be_imported_at_module_level(self):
        try:
            import tgrun_nowhere  # noqa: F401
        except ModuleNotFoundError as e:
            text = _export._message(e)
        self.assertTrue(
            text.startswith(
                "ModuleNotFoundError: No module named 'tgrun_nowhere' (a tgrun Python "
                "component has only the modules imported while it was built"
            ),
            text,
        )

    def test_long_tracebacks_keep_both_ends(self):
        e = RuntimeError("x" * 100_000)
        text = _export._message(e)
        self.assertLessEqual(len(text), _export.MAX_MESSAGE + 100)
        self.assertTrue(text.startswith("RuntimeError: xxx"))
        self.assertIn("characters left out", text)


if __name__ == "__main__":
    unittest.main()
