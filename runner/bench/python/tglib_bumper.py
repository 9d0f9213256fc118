"""tglib's own pattern for the Prometheus bumper, unsandboxed: the figure 6 comparison.

As tglib's advanced-usage example and its PrometheusClient have it: the seed's producer
(one Job per enabled job on an unbounded asyncio.Queue every period), consumers awaiting
`add_x`, which asks Prometheus for the latest `foo` over one shared aiohttp ClientSession
(GET /api/v1/query, timeout 2 s, `resp.json()`) and writes `foo_plus_5` with every label
into an in-memory cache keyed by the formatted series, as tglib's write_metrics does.
Offered as our figure 6 is (50 runs every 10 ms, five consumers); runs finished per second
and each run's duration (the job function's call) over SECONDS after WARMUP.

Usage: tglib_bumper.py PROMETHEUS_PORT [SECONDS]. Prints one JSON line.
"""

import asyncio
import dataclasses
import json
import resource
import sys
import time
from typing import Any, Dict, List, Optional, Union

import aiohttp

PORT = int(sys.argv[1])
SECONDS = float(sys.argv[2]) if len(sys.argv) > 2 else 6.0
WARMUP = 2.0
JOBS = 50
PERIOD = 0.01
CONSUMERS = 5


@dataclasses.dataclass
class Job:
    name: str
    start_time_ms: int
    params: Dict


@dataclasses.dataclass
class PrometheusMetric:
    name: str
    labels: Dict[str, Any]
    value: Union[int, float]
    time: Optional[int] = None


class PrometheusClient:
    """The parts of tglib's client the bumper uses, as tglib implements them."""

    session: Optional[aiohttp.ClientSession] = None
    cache: Dict[str, tuple] = {}

    def __init__(self, timeout: int) -> None:
        self.timeout = timeout

    @staticmethod
    def format_query(metric_name: str, labels: Dict[str, Any] = {}) -> str:
        label_list = []
        for name, val in labels.items():
            if isinstance(val, bool):
                val = str(val).lower()
            label_list.append(f'{name}="{val}"')
        label_str = ",".join(label_list)
        for c in ".-/[]":
            label_str = label_str.replace(c, "_")
        return f"{metric_name}{{{label_str}}}" if label_str else metric_name

    async def query_latest(self, query: str) -> Dict:
        url = f"http://127.0.0.1:{PORT}/api/v1/query"
        async with self.session.get(url, params={"query": query}, timeout=self.timeout) as resp:
            return await resp.json()

    @classmethod
    def write_metrics(cls, metrics: List[PrometheusMetric]) -> None:
        current = {}
        for m in metrics:
            current[cls.format_query(m.name, m.labels)] = (m.value, m.time)
        cls.cache.update(current)


async def add_x(start_time_ms: int, metric_name: str, x: int) -> None:
    client = PrometheusClient(timeout=2)
    response = await client.query_latest(client.format_query(metric_name))
    if response["status"] != "success":
        raise RuntimeError(response)
    metrics = []
    for result in response["data"]["result"]:
        labels = dict(result["metric"])
        labels.pop("__name__", None)
        value = float(result["value"][1]) + x
        metrics.append(PrometheusMetric(f"{metric_name}_plus_{x}", labels, value, start_time_ms))
    client.write_metrics(metrics)


JOB_FUNCTIONS = {"add_x": add_x}
durations: List[float] = []
failed = 0
measuring = False


async def produce(queue: asyncio.Queue, pipeline: Dict) -> None:
    while True:
        start_time = time.time()
        await asyncio.gather(
            *[
                queue.put(Job(job["name"], int(round(start_time * 1e3)), job.get("params", {})))
                for job in pipeline["jobs"]
                if job.get("enabled", False)
            ]
        )
        await asyncio.sleep(max(start_time + pipeline["period"] - time.time(), 0))


async def consume(queue: asyncio.Queue) -> None:
    global failed
    while True:
        job = await queue.get()
        t0 = time.perf_counter()
        try:
            await JOB_FUNCTIONS[job.name](job.start_time_ms, **job.params)
        except Exception:
            failed += 1
        if measuring:
            durations.append(time.perf_counter() - t0)


async def main() -> None:
    global measuring
    PrometheusClient.session = aiohttp.ClientSession()
    pipeline = {
        "period": PERIOD,
        "jobs": [
            {"name": "add_x", "enabled": True, "params": {"metric_name": "foo", "x": 5}}
            for _ in range(JOBS)
        ],
    }
    queue: asyncio.Queue = asyncio.Queue()
    tasks = [asyncio.create_task(produce(queue, pipeline))]
    tasks += [asyncio.create_task(consume(queue)) for _ in range(CONSUMERS)]
    await asyncio.sleep(WARMUP)
    measuring = True
    t0 = time.perf_counter()
    cpu0 = _cpu()
    await asyncio.sleep(SECONDS)
    measuring = False
    secs = time.perf_counter() - t0
    cpu = _cpu() - cpu0
    for t in tasks:
        t.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    await PrometheusClient.session.close()
    d = sorted(durations)
    pick = lambda p: d[min(len(d) - 1, int(p * len(d)))] * 1e6 if d else float("nan")
    print(
        json.dumps(
            {
                "runs_per_s": len(d) / secs,
                "p50_us": pick(0.5),
                "p99_us": pick(0.99),
                "runs": len(d),
                "failed": failed,
                "series_written": len(PrometheusClient.cache),
                "cpu_per_run_us": cpu / max(len(d), 1) * 1e6,
                "peak_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            }
        )
    )


def _cpu() -> float:
    """This process' CPU time so far (user and system), in seconds."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


if __name__ == "__main__":
    asyncio.run(main())
