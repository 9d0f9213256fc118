"""The fixture's jobs: one series per health threshold main() configured, at the tick's
start time (seconds, as its consumer passes it); each link's health from its latest value
in Prometheus; and each link's stats from the service's neighbours over HTTP (a network
test service, a scan service, a query service at URLs from the environment), in the style
of tgnms' health service."""

import asyncio
import json
import logging
import os
from typing import Dict, List

import aiohttp

from tglib.clients.prometheus_client import PrometheusClient, PrometheusMetric, consts
from tglib.exceptions import ClientRuntimeError

from .stats.health import health_of
from .stats.settings import Settings


async def generate_health_labels(time_s: int, period_s: int) -> None:
    if not Settings.thresholds:
        raise RuntimeError("main() did not run: no thresholds")
    metrics: List[PrometheusMetric] = [
        PrometheusMetric(
            f"{Settings.prefix}health_threshold",
            {"level": level, "period": period_s},
            value,
            int(round(time_s * 1e3)),
        )
        for level, value in Settings.thresholds.items()
    ]
    PrometheusClient.write_metrics(metrics)


async def generate_link_health(time_s: int, period_s: int, metric: str) -> None:
    """Each link's latest ``metric`` from Prometheus, and its health by the thresholds."""
    client = PrometheusClient(timeout=2)
    try:
        response = await client.query_latest(metric)
    except ClientRuntimeError:
        logging.exception(f"Failed to fetch {metric} from Prometheus")
        return
    if response["status"] != "success":
        logging.error(f"Prometheus did not answer {metric}: {response}")
        return
    metrics: List[PrometheusMetric] = []
    for result in response["data"]["result"]:
        value = float(result["value"][1])
        labels = {
            consts.link_name: result["metric"][consts.link_name],
            "level": health_of(value, Settings.thresholds),
        }
        metrics.append(
            PrometheusMetric(f"{Settings.prefix}link_health", labels, value, time_s * 1000)
        )
    PrometheusClient.write_metrics(metrics)


async def _get_json(session: aiohttp.ClientSession, url: str, params: Dict = None):
    """The neighbour's JSON answer, or None (logged) when it fails or says no."""
    try:
        async with session.get(url, params=params) as resp:
            if resp.status != 200:
                logging.error(f"Request to {url} failed: {resp.reason} ({resp.status})")
                return None
            return json.loads(await resp.read())
    except (aiohttp.ClientError, asyncio.TimeoutError):
        logging.exception(f"Request to {url} failed")
        return None


async def fetch_neighbour_stats(time_s: int, network_name: str) -> None:
    """Each link's test health, interference and availability from the neighbours: one
    series per stat a neighbour gave, the others still written when one fails."""
    network_test = os.environ.get("NETWORK_TEST_URL", "http://network_test:8080")
    scan = os.environ.get("SCAN_SERVICE_URL", "http://scan_service:8080")
    query = os.environ.get("QUERY_SERVICE_URL", "http://query_service:8086")
    stats: Dict[str, Dict[str, float]] = {}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2)) as session:
        executions = await _get_json(
            session,
            f"{network_test}/execution",
            {"network_name": network_name, "status": "finished"},
        )
        if executions and executions["executions"]:
            latest = max(e["id"] for e in executions["executions"])
            results = await _get_json(session, f"{network_test}/execution/{latest}")
            for r in (results or {}).get("results", []):
                stats.setdefault(r["asset_name"], {})["test_health"] = r["health"]
        scans = await _get_json(session, f"{scan}/execution", {"network_name": network_name})
        for link, directions in ((scans or {}).get("n_day_avg") or {}).items():
            stats.setdefault(link, {})["interference"] = max(d["inr_curr_power"] for d in directions)
        events = await _get_json(session, f"{query}/link_health/{network_name}/1")
        for link, data in ((events or {}).get("events") or {}).items():
            if "linkAlive" in data:
                stats.setdefault(link, {})["link_alive"] = data["linkAlive"]
    metrics = [
        PrometheusMetric(
            f"{Settings.prefix}neighbour_{stat}",
            {consts.network: network_name, consts.link_name: link},
            value,
            time_s * 1000,
        )
        for link, by_stat in sorted(stats.items())
        for stat, value in sorted(by_stat.items())
    ]
    PrometheusClient.write_metrics(metrics)
