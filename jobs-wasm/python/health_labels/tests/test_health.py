"""The fixture's own unit tests (ours, in the style of tgnms' health service's): plain
test cases reading a fixture file beside them."""

import json
import os
import unittest

from health_labels.stats.health import health_of
from health_labels.stats.settings import Settings


def thresholds():
    with open(os.path.join(os.path.dirname(__file__), "thresholds.json")) as f:
        return json.load(f)


class HealthTests(unittest.TestCase):
    def setUp(self) -> None:
        Settings.update(thresholds(), "tg_")

    def test_health_of(self) -> None:
        self.assertEqual(health_of(100, Settings.thresholds), "excellent")
        self.assertEqual(health_of(96.1, Settings.thresholds), "good")
        self.assertEqual(health_of(80, Settings.thresholds), "marginal")
        self.assertEqual(health_of(12.5, Settings.thresholds), "poor")

    def test_settings_are_a_copy(self) -> None:
        given = thresholds()
        Settings.update(given, "x_")
        given["excellent"] = 0
        self.assertEqual(Settings.thresholds["excellent"], 99.5)
        self.assertEqual(Settings.prefix, "x_")
