"""Test fixture: one Python job that does what its `mode` param says, for the runner's
tests and benchmarks of Python guests."""

import asyncio
import json
import logging
import os
from datetime import datetime, timezone

import aiohttp
from tgrun import Ctx, job, log, sql

# Runs this instance has seen: 1 in every run, as each has an instance of its own.
_runs = 0


def _deep(n: int) -> None:
    if n == 0:
        raise ValueError("boom from deep inside")
    _deep(n - 1)


def _sql_round_trip(datetime_type: str) -> None:
    sql.execute("DROP TABLE IF EXISTS py_probe_types")
    sql.execute(
        f"CREATE TABLE py_probe_types (i BIGINT, f DOUBLE, t TEXT, b BLOB, d {datetime_type}, "
        "n TEXT, flag BIGINT)"
    )
    when = datetime(2026, 3, 29, 1, 30, 15, 250000, tzinfo=timezone.utc)
    r = sql.execute(
        "INSERT INTO py_probe_types VALUES (?, ?, ?, ?, ?, ?, ?)",
        [-42, 2.5, "héllo", b"\x00\x01\xff", when, None, True],
    )
    with sql.transaction() as tx:
        tx.execute("INSERT INTO py_probe_types (i) VALUES (?)", [7])
    try:
        with sql.transaction() as tx:
            tx.execute("INSERT INTO py_probe_types (i) VALUES (?)", [8])
            raise RuntimeError("roll it back")
    except RuntimeError:
        pass
    rows = sql.query("SELECT i, f, t, b, d, n, flag FROM py_probe_types ORDER BY i")
    first = rows[0]
    log.info(
        json.dumps(
            {
                "rows_affected": r.rows_affected,
                "columns": rows.columns,
                "is": [row["i"] for row in rows],
                "i": first["i"],
                "f": first["f"],
                "t": first["t"],
                "b": list(first["b"]),
                "d_ms": int(first["d"].timestamp() * 1000) if first["d"] else None,
                "d_is_datetime": isinstance(first["d"], datetime),
                "n": first["n"],
                "flag": first["flag"],
            }
        )
    )
    sql.execute("DROP TABLE py_probe_types")


async def _services_health() -> None:
    """As tgnms' network_health_service asks its neighbours: aiohttp, URLs from the
    environment with defaults, failures caught and logged, the others going on."""
    async def fetch(session, name: str, url: str, params=None) -> None:
        try:
            async with session.get(url, params=params) as resp:
                if resp.status != 200:
                    log.info(f"{name}: {resp.reason} ({resp.status})")
                    return
                log.info(f"{name}: " + json.dumps(json.loads(await resp.read()), sort_keys=True))
        except (aiohttp.ClientError, asyncio.TimeoutError) as e:
            log.info(f"{name}: failed {type(e).__name__}")

    network_test = os.environ.get("NETWORK_TEST_URL", "http://network_test:8080")
    scan = os.environ.get("SCAN_SERVICE_URL", "http://scan_service:8080")
    query = os.environ.get("QUERY_SERVICE_URL", "http://query_service:8086")
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=1)) as session:
        await asyncio.gather(
            fetch(session, "network_test", f"{network_test}/execution",
                  {"network_name": "east", "status": "finished"}),
            fetch(session, "scan", f"{scan}/execution/7"),
            fetch(session, "query", f"{query}/link_health/east/1"),
        )


@job
def py_probe(ctx: Ctx, mode: str = "noop", **extra) -> None:
    if mode == "noop":
        return
    if mode == "late_imports":
        # The standard library's own import at a first call (datetime.strptime's), and a
        # module this component never imported while it was built.
        log.info(str(datetime.strptime("2026-12-07", "%Y-%m-%d").date()))
        import statistics  # noqa: F401

        return
    if mode == "count":
        global _runs
        _runs += 1
        log.info(f"run {_runs} of this instance")
        return
    if mode == "raise":
        _deep(3)
    if mode == "sdk_error":
        sql.query("SELECT * FROM no_such_table_py_probe")
    if mode == "exit":
        raise SystemExit(3)
    if mode == "recursion":
        _deep(10**6)
    if mode == "spin":
        while True:
            pass
    if mode == "memory":
        hog = []
        while True:
            hog.append(bytearray(1 << 20))
    if mode == "log":
        log.info("info via the SDK")
        log.warn("warn with %d args", 2)
        logging.getLogger("py_probe").error("error via logging")
        print("printed line")
        return
    if mode == "aiohttp":
        return _services_health()
    if mode == "env":
        # As a tglib service reads its settings: at call time, with defaults.
        log.info(json.dumps(dict(os.environ), sort_keys=True))
        log.info("query service at " + os.environ.get("QUERY_SERVICE_URL", "http://query_service:8086"))
        return
    if mode == "context":
        log.info(
            json.dumps(
                {
                    "job": ctx.job,
                    "run_id": ctx.run_id,
                    "pipeline": ctx.pipeline,
                    "start_time_ms": ctx.start_time_ms,
                    "settings": ctx.settings(),
                    "extra": extra,
                }
            )
        )
        return
    if mode == "sql":
        # SQLite knows a date-time column only by the bare name DATETIME; MariaDB keeps
        # milliseconds only in DATETIME(3).
        _sql_round_trip(extra.get("datetime_type", "DATETIME(3)"))
        return
    raise ValueError(f"unknown mode {mode!r}")
