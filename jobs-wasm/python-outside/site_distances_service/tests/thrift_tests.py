"""The generated types through tglib's Thrift helpers (our own tests)."""

import unittest

from sites_thrift.ttypes import Site, SiteType
from tglib.utils.thrift import binary2thrift, json2thrift, thrift2binary, thrift2json


class ThriftTests(unittest.TestCase):
    def test_round_trips(self) -> None:
        site = Site("paris", 48.8566, 2.3522, SiteType.CN)
        self.assertEqual(binary2thrift(Site, thrift2binary(site)), site)
        self.assertEqual(json2thrift(Site, thrift2json(site)), site)
