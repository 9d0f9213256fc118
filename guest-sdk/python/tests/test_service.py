"""A tglib service's main.py kept in every run (tgrun._service), on the machine's Python:
main() with its configuration file and without a server, one tick of its producer, its
consumer's call of the job, and the runs without a tick."""

import asyncio
import dataclasses
import json
import time
import types
import unittest
from typing import Any, Dict

from wit_world.imports import context

import tglib
import tgrun
from tgrun import _service


@dataclasses.dataclass
class Job:
    name: str
    start_time_s: int
    params: Dict[str, Any]


def service(**functions) -> types.ModuleType:
    module = types.ModuleType("fake_main")
    module.Job = Job
    for name, fn in functions.items():
        setattr(module, name, fn)
    return module


class Runs(unittest.TestCase):
    def setUp(self):
        self.old = (context.pipeline_config, context.service_settings, _service._main)
        self.pipeline = {"period": 300, "jobs": [
            {"name": "a", "enabled": True, "params": {"x": 1}},
            {"name": "b", "enabled": True},
            {"name": "c", "enabled": False},
        ]}
        context.pipeline_config = lambda: json.dumps(self.pipeline)
        context.service_settings = lambda: json.dumps({"thresholds": {"good": 0.9}})
        self.called = []

    def tearDown(self):
        context.pipeline_config, context.service_settings, _service._main = self.old

    def run_job(self, module, job="a", start_time_ms=1_700_000_000_500, params=None):
        # A run's params: its job's configured ones, unless a run by hand gives others.
        if params is None:
            entry = [j for j in self.pipeline["jobs"] if j["name"] == job]
            params = entry[0].get("params", {}) if entry else {}
        _service.export_main(module)
        _service.run(job, "p", start_time_ms, params, lambda r: self.called.append(("plain", r)))

    def consume_into(self, seen):
        async def consume(queue):
            while True:
                job = await queue.get()
                seen.append((job.name, job.start_time_s, job.params))
        return consume

    def test_main_reads_its_file_and_init_serves_nothing(self):
        got = {}

        def main():
            with open("./service_config.json") as f:
                got["config"] = json.load(f)
            tglib.init(lambda: None, {"clients"})
            got["init"] = "returned"

        self.run_job(service(main=main, consume=self.consume_into([])))
        self.assertEqual(
            got["config"],
            {"thresholds": {"good": 0.9}, "pipelines": {"p": self.pipeline}, "num_consumers": 1},
        )
        self.assertEqual(got["init"], "returned")
        # Outside a run's main(), init() refuses as before, and open() is the real one.
        with self.assertRaises(tglib.TGLibError):
            tglib.init(lambda: None, set())
        with self.assertRaises(FileNotFoundError):
            open("./service_config.json")

    def test_what_the_coroutine_given_to_init_sets_up_before_its_producers_is_there(self):
        # As tgnms' health service: async_main updates settings, then starts its producers
        # and consumers; what comes after they start never runs in a run.
        settings, events = {}, []

        async def produce(queue, name, pipeline):
            events.append("the real producer")  # never: the tick runs it, not set-up
            await queue.put(Job("a", 0, {}))
            await asyncio.sleep(pipeline["period"])

        async def async_main(config):
            await asyncio.sleep(0)
            settings.update(config["thresholds"])
            events.append(("consumers", config["num_consumers"]))
            q = asyncio.Queue()
            # main.py's own global, as async_main finds it in a real main.py.
            await asyncio.gather(*[module.produce(q, n, p) for n, p in config["pipelines"].items()])
            events.append("after gather")

        module = service(consume=self.consume_into([]))
        module.produce = produce
        def main():
            with open("./service_config.json") as f:
                config = json.load(f)
            tglib.init(lambda: async_main(config), set())

        module.main = main
        self.run_job(module)
        self.assertEqual(settings, {"good": 0.9})
        self.assertEqual(events, [("consumers", 1), "the real producer"])
        self.assertIs(module.produce, produce)

    def test_a_start_up_loop_of_its_own_ends_at_its_first_long_sleep(self):
        events = []

        async def async_main(config):
            events.append("set up")
            while True:
                await asyncio.sleep(60)
                events.append("woke")

        module = service(consume=self.consume_into([]))
        module.main = lambda: tglib.init(lambda: async_main({}), set())
        self.run_job(module)
        self.assertEqual(events, ["set up"])

    def test_one_tick_its_clock_at_the_due_time_and_the_jobs_own_record(self):
        seen, ticks = [], []

        async def produce(queue, name, pipeline):
            while True:
                start = time.time()
                ticks.append((name, start))
                await asyncio.sleep(0)  # a yield is not the wait for the next tick
                for j in pipeline["jobs"]:
                    if j.get("enabled"):
                        await queue.put(Job(j["name"], int(start), {**j.get("params", {}), "tick": len(ticks)}))
                await asyncio.sleep(start + pipeline["period"] - time.time())

        self.run_job(service(produce=produce, consume=self.consume_into(seen)), job="a")
        self.assertEqual(len(ticks), 1)
        self.assertEqual(ticks[0][1], 1_700_000_000.5)
        self.assertEqual(seen, [("a", 1_700_000_000, {"x": 1, "tick": 1})])
        # The clock is the real one again after the tick.
        self.assertGreater(abs(time.time() - 1_700_000_000), 1_000_000)

    def test_the_tick_shows_the_runs_own_job_with_the_runs_params_and_enabled(self):
        # A run by hand of the disabled job c, with params of its own.
        seen = []

        async def produce(queue, name, pipeline):
            for j in pipeline["jobs"]:
                if j.get("enabled"):
                    await queue.put(Job(j["name"], 0, j.get("params", {})))
            await asyncio.sleep(pipeline["period"])

        self.run_job(service(produce=produce, consume=self.consume_into(seen)), job="c", params={"y": 2})
        self.assertEqual(seen, [("c", 0, {"y": 2})])
        # The configuration the host gave is not changed for the next run.
        self.assertFalse(json.loads(context.pipeline_config())["jobs"][2]["enabled"])

    def test_a_producer_that_waits_first_still_ticks_once(self):
        seen = []

        async def produce(queue, name, pipeline):
            while True:
                await asyncio.sleep(pipeline["period"])
                await queue.put(Job("b", int(time.time()), {}))

        self.run_job(service(produce=produce, consume=self.consume_into(seen)), job="b")
        self.assertEqual(seen, [("b", 1_700_000_000, {})])

    def test_a_tick_of_a_one_second_period_ends_at_its_sleep_under_a_second(self):
        puts = []
        self.pipeline["period"] = 1

        async def produce(queue, name, pipeline):
            while True:
                start = time.time()
                puts.append(start)
                await queue.put(Job("a", int(start), {}))
                await asyncio.sleep(0.001)  # a yield of its own is not the wait
                await asyncio.sleep(start + pipeline["period"] - time.time())

        self.run_job(service(produce=produce, consume=self.consume_into([])))
        self.assertEqual(puts, [1_700_000_000.5])

    def test_a_late_tick_ends_at_its_negative_sleep(self):
        puts = []

        async def produce(queue, name, pipeline):
            while True:
                puts.append(1)
                await queue.put(Job("a", 0, {}))
                await asyncio.sleep(-3)

        self.run_job(service(produce=produce, consume=self.consume_into([])))
        self.assertEqual(len(puts), 1)

    def test_a_job_the_tick_did_not_put_is_not_run_and_the_run_fails_saying_so(self):
        seen = []

        async def produce(queue, name, pipeline):
            await queue.put(Job("b", 0, {}))
            await asyncio.sleep(60)

        with self.assertRaises(tgrun.Failed) as e:
            self.run_job(service(produce=produce, consume=self.consume_into(seen)), job="a")
        self.assertEqual(seen, [])
        self.assertIn("put no job 'a' on the queue in this tick (it put: b)", str(e.exception))

    def test_a_producers_error_is_the_runs(self):
        async def produce(queue, name, pipeline):
            if pipeline["period"] < 600:
                raise ValueError("Pipeline period must be at least 600 seconds")

        with self.assertRaises(ValueError):
            self.run_job(service(produce=produce, consume=self.consume_into([])))

    def test_without_a_pipeline_the_record_is_made_from_the_job_class(self):
        seen = []
        context.pipeline_config = lambda: None  # a job no pipeline configures

        async def produce(queue, name, pipeline):
            raise AssertionError("no tick without a pipeline")

        self.run_job(service(produce=produce, consume=self.consume_into(seen)), params={"x": 2})
        self.assertEqual(seen, [("a", 1_700_000_000, {"x": 2})])

    def test_a_routes_request_gets_what_main_sets_up_without_a_pipeline(self):
        got = {}

        def main():
            with open("service_config.json") as f:
                got.update(json.load(f))

        _service.export_main(service(main=main))
        _service.setup_for_route()
        self.assertEqual(got, {"thresholds": {"good": 0.9}, "pipelines": {}, "num_consumers": 1})

    def test_without_consume_the_job_is_called_as_jobs_py_are(self):
        context.pipeline_config = lambda: None
        self.run_job(service(), params={"x": 3})
        (how, record), = self.called
        self.assertEqual((how, record.name, record.start_time_s, record.params), ("plain", "a", 1_700_000_000, {"x": 3}))


if __name__ == "__main__":
    unittest.main()
