"""The fixture's job under unittest's mocks: on a test's own event loop, and through
asyncio.run."""

import asyncio
import unittest
from unittest import mock

from health_labels.jobs import generate_health_labels
from health_labels.stats.settings import Settings
from tglib.clients.prometheus_client import PrometheusClient


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


class WithoutMainTests(unittest.TestCase):
    def test_no_thresholds_is_an_error(self) -> None:
        Settings.update({}, "")
        with self.assertRaisesRegex(RuntimeError, "main\\(\\) did not run"):
            asyncio.run(generate_health_labels(0, 60))
