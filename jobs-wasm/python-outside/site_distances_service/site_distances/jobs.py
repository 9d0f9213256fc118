"""Test fixture: a tglib service with third-party dependencies and generated Thrift types
(our own code). Its job measures the distance between each pair of sites it is given."""

import logging
from itertools import combinations
from typing import Dict, List

from geopy.distance import geodesic
from sites_thrift.ttypes import Site, SiteType
from tglib.clients.prometheus_client import PrometheusClient, PrometheusMetric
from tglib.utils.thrift import binary2thrift, thrift2binary, thrift2json


async def measure_sites(start_time_ms: int, sites: List[Dict]) -> None:
    # Each site through Thrift's binary protocol and back, as it would come off the wire.
    parsed = [
        binary2thrift(
            Site,
            thrift2binary(
                Site(s["name"], s["lat"], s["lon"], SiteType.POP if s.get("pop") else SiteType.CN)
            ),
        )
        for s in sites
    ]
    metrics = [
        PrometheusMetric(
            "site_distance_km",
            {"a": a.name, "b": b.name, "pop": a.site_type == SiteType.POP},
            round(geodesic((a.latitude, a.longitude), (b.latitude, b.longitude)).km, 3),
            start_time_ms,
        )
        for a, b in combinations(parsed, 2)
    ]
    PrometheusClient.write_metrics(metrics)
    logging.info(f"first site as Thrift JSON: {thrift2json(parsed[0]).decode()}")
