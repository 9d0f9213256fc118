"""The job under asynctest's patch, as tglib services test theirs (our own tests): the
sites come from a fixture file read by a path relative to the service's folder."""

import json

import asynctest
from site_distances.jobs import measure_sites


class DistancesTests(asynctest.TestCase):
    async def setUp(self) -> None:
        with open("tests/sites.json") as f:
            self.sites = json.load(f)

    @asynctest.patch("tglib.clients.prometheus_client.PrometheusClient.write_metrics")
    async def test_one_series_per_pair(self, write_metrics) -> None:
        await measure_sites(1_000, self.sites)
        metrics = write_metrics.call_args[0][0]
        self.assertEqual(
            [(m.labels["a"], m.labels["b"]) for m in metrics],
            [("berlin.1", "paris"), ("berlin.1", "madrid"), ("paris", "madrid")],
        )
        self.assertEqual(metrics[0].value, 879.699)
        self.assertEqual([m.labels["pop"] for m in metrics], [True, True, False])
        self.assertTrue(all(m.time == 1_000 for m in metrics))

    @asynctest.patch("tglib.clients.prometheus_client.PrometheusClient.write_metrics")
    async def test_the_loop_is_the_tests_own(self, write_metrics) -> None:
        self.assertIs(self.loop, __import__("asyncio").get_running_loop())
        await measure_sites(0, self.sites[:2])
        self.assertEqual(len(write_metrics.call_args[0][0]), 1)
