"""The fixture's job under unittest's mocks: on a test's own event loop, and through
asyncio.run."""

import asyncio
import unittest
from unittest import mock

from health_labels.jobs import generate_health_labels, generate_link_health
from health_labels.stats.settings import Settings
from tglib.clients.prometheus_client import PrometheusClient
from tglib.exceptions import ClientRuntimeError


class GenerateTests(unittest.IsolatedAsyncioTestCase):
    def setUp(self) -> None:
        Settings.update({"good": 95.0, "poor": 0.0}, "tg_")

    @mock.patch.object(PrometheusClient, "write_metrics")
    async def test_one_series_per_level(self, write_metrics) -> None:
        await asyncio.sleep(0.01)
        await generate_health_labels(1_700_000_000, 900)
        metrics = write_metrics.call_args[0][0]
        self.assertEqual(
            sorted((m.name, m.labels["level"], m.value, m.time) for m in metrics),
            [
                ("tg_health_threshold", "good", 95.0, 1_700_000_000_000),
                ("tg_health_threshold", "poor", 0.0, 1_700_000_000_000),
            ],
        )
        self.assertEqual({m.labels["period"] for m in metrics}, {900})


class LinkHealthTests(unittest.IsolatedAsyncioTestCase):
    def setUp(self) -> None:
        Settings.update({"excellent": 99.0, "good": 90.0}, "")

    @mock.patch.object(PrometheusClient, "write_metrics")
    @mock.patch.object(
        PrometheusClient,
        "query_latest",
        side_effect=[
            {
                "status": "success",
                "data": {
                    "result": [
                        {"metric": {"linkName": "a"}, "value": [0, "99.5"]},
                        {"metric": {"linkName": "b"}, "value": [0, "12"]},
                    ]
                },
            },
            ClientRuntimeError(),
        ],
    )
    async def test_each_links_health_and_a_failed_query_writes_nothing(
        self, query_latest, write_metrics
    ) -> None:
        await generate_link_health(10, 60, "link_avail")
        query_latest.assert_called_with("link_avail")
        self.assertEqual(
            [(m.labels["linkName"], m.labels["level"], m.time) for m in write_metrics.call_args[0][0]],
            [("a", "excellent", 10_000), ("b", "poor", 10_000)],
        )
        write_metrics.reset_mock()
        with self.assertLogs(level="ERROR"):
            await generate_link_health(10, 60, "link_avail")
        write_metrics.assert_not_called()


class WithoutMainTests(unittest.TestCase):
    def test_no_thresholds_is_an_error(self) -> None:
        Settings.update({}, "")
        with self.assertRaisesRegex(RuntimeError, "main\\(\\) did not run"):
            asyncio.run(generate_health_labels(0, 60))
