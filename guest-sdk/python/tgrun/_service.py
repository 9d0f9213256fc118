"""A tglib service's ``main.py``, kept: what its ``main()`` sets up, one tick of its
``produce(queue, name, pipeline)`` and its ``consume(queue)``'s call of the job, in every run
of one of the service's jobs.

Under tglib, ``main()`` reads ``service_config.json``, sets up what its jobs share and hands
``init`` a coroutine that starts one producer per pipeline and consumers on one queue; each
tick a producer may fetch, fan out and compute params before it puts ``Job`` records on the
queue, and a consumer calls each job in its own way (``function(job.start_time_s,
**job.params)``). Here the runner owns the schedule, the overlap policies, the limits and the
history, and each run is a fresh instance, so a run of job ``X`` due at ``T`` in pipeline
``P`` does, in its own sandbox, with its own grants and limits:

1. ``main.main()`` if main.py has one, with ``open("./service_config.json")`` answering the
   service's settings and pipeline ``P`` as written (``pipelines`` holds that one;
   ``num_consumers`` is 1: the run is its one consumer), and ``tglib.init`` keeping what it
   is given instead of serving; then the coroutine ``init`` was given (``async_main(config)``)
   up to where it makes its first producer or consumer (or sleeps a second or more): what
   the service sets up before its producers start (``Metrics.update_metrics(...)`` in
   ``main()`` or at the top of ``async_main``) is there.
2. One tick of ``main.produce(queue, "P", pipeline)``: all it does up to the sleep that
   waits for its next tick (its first sleep of a second or more after it put something, or
   its second such sleep), its clock (``time.time()``) reading ``T`` at its first reading.
   What it puts on the queue is kept in the instance (bounded by the run's memory). For a
   period of a second or less, its wait for the next tick is a sleep that wakes past half
   the period.
3. ``main.consume(queue)`` over the records the tick put whose ``name`` is ``X``: the
   service's own call of its job; its next ``queue.get()`` ends the run.

A run started by hand does the tick of its job's pipeline too, due now. In the tick, the
run's own job is shown with the run's params (a run by hand may give others) and enabled.
A route's request runs step 1 before its handler (``service_config.json`` then has no
pipeline). Without ``produce``, the record is made from main.py's ``Job`` class (``name``,
``start_time_ms`` or ``start_time_s`` from ``T``, ``params`` from the job's configuration);
without ``consume``, the job is called as ``jobs.py``'s are (``start_time_ms`` and params by
keyword).

Each job's run does its pipeline's tick: tglib does one per tick for all the pipeline's
jobs, so a pipeline of two jobs fetches twice as often as under tglib (and each run sees
its own fetch).
"""

import builtins
import dataclasses
import json
import time
from types import SimpleNamespace
from typing import Any, Callable, Dict, List, Optional

from wit_world.imports import context as _context

from ._swap import opening, swapped

_main = None

# The files a service's main() reads from its working directory under tglib.
_SERVICE_FILES = ("./service_config.json", "service_config.json")


class _TickDone(BaseException):
    """The tick's producer went to sleep until its next tick. A ``BaseException``: a
    producer's ``except Exception`` must not swallow it and loop."""


class _Consumed(BaseException):
    """The consumer asked for a job after the run's last."""


class _Started(BaseException):
    """The service's start-up coroutine began its producers or consumers: its set-up is
    done, and what follows is the runner's to do."""


def export_main(module) -> None:
    """Keeps ``module`` (a service's main.py) for every run: see the module's doc. At build
    time, so an ``async def`` producer's or consumer's loop is made in the snapshot."""
    global _main
    import inspect

    from . import _aio

    for name in ("produce", "consume"):
        if inspect.iscoroutinefunction(getattr(module, name, None)):
            _aio.prepare()
    _main = module


def active() -> bool:
    return _main is not None


class _TickQueue:
    """The queue a tick's producer puts on: it keeps what is put, in order."""

    def __init__(self):
        self.items: List[Any] = []

    async def put(self, item) -> None:
        self.items.append(item)

    def put_nowait(self, item) -> None:
        self.items.append(item)

    def qsize(self) -> int:
        return len(self.items)

    def empty(self) -> bool:
        return not self.items

    def full(self) -> bool:
        return False


class _RunQueue:
    """The queue the consumer takes from: this run's records, then the end of the run."""

    def __init__(self, items: List[Any]):
        self._items = list(items)

    async def get(self):
        return self.get_nowait()

    def get_nowait(self):
        if not self._items:
            raise _Consumed()
        return self._items.pop(0)

    def task_done(self) -> None:
        pass

    async def join(self) -> None:
        pass

    def qsize(self) -> int:
        return len(self._items)

    def empty(self) -> bool:
        return not self._items


def _setup(pipeline_name: Optional[str], pipeline: Optional[Dict]) -> None:
    """Runs main.py's ``main()`` with its configuration file and without a server."""
    run_main = getattr(_main, "main", None)
    if not callable(run_main):
        return
    import tglib

    service_config = json.loads(_context.service_settings() or "{}")
    service_config["pipelines"] = {pipeline_name: pipeline} if pipeline is not None else {}
    service_config["num_consumers"] = 1
    text = json.dumps(service_config).encode()
    open_ = opening(lambda file: text if file in _SERVICE_FILES else None)
    with swapped(builtins, open=open_), swapped(tglib, _init_calls=[]):
        run_main()
        calls = tglib._init_calls
    for start, _clients, _routes in calls:
        _until_started(start)


def _until_started(start: Callable) -> None:
    """Runs ``start()``, the coroutine a service's ``main()`` handed ``init``, up to where
    it makes its first producer or consumer: calling main.py's ``produce``/``consume`` then
    ends it, as does a sleep of a second or more (a loop of its own has started)."""
    import asyncio

    from . import _aio

    def started(*args, **kwargs):
        raise _Started()

    real_sleep = asyncio.sleep

    async def sleep(delay, result=None):
        if delay >= 1:
            raise _Started()
        return await real_sleep(delay, result)

    loops = {n: started for n in ("produce", "consume") if hasattr(_main, n)}
    try:
        with swapped(_main, **loops), swapped(asyncio, sleep=sleep):
            coro = start() if callable(start) else start
            if asyncio.iscoroutine(coro):
                _aio.run(coro)
    except _Started:
        pass


def setup_for_route() -> None:
    """What ``main()`` sets up, for a route's request (no pipeline, no tick)."""
    _setup(None, None)


def _tick(name: str, pipeline: Dict, due_s: float) -> List[Any]:
    """One tick of main.py's ``produce``: what it put on the queue."""
    import asyncio  # here: a component without a main.py carries no asyncio for it

    from . import _aio

    queue = _TickQueue()
    real_sleep, real_time = asyncio.sleep, time.time
    offset = None

    def clock() -> float:
        # Its first reading is the due time exactly (a start time in whole seconds must not
        # fall a second short by a rounding); later ones move on with the real clock.
        nonlocal offset
        now = real_time()
        if offset is None:
            offset = now - due_s
            return due_s
        return now - offset

    idle = [False]  # a long sleep with nothing put yet: a producer that waits first
    try:
        period = float(pipeline.get("period") or 0)
    except (TypeError, ValueError):
        period = 0.0

    def waits_for_next_tick(delay) -> bool:
        # A wait of a second or more, one that wakes past half the period (a period of a
        # second or less: `start + period - time.time()` is under a second), or a negative
        # one (the next tick is due already); sleep(0), a yield, is not.
        now = due_s if offset is None else real_time() - offset
        return delay < 0 or delay >= 1 or (period > 0 and now + delay >= due_s + period / 2)

    async def sleep(delay, result=None):
        if waits_for_next_tick(delay):
            if queue.items or idle[0]:
                raise _TickDone()
            idle[0] = True
            return result
        return await real_sleep(delay, result)

    try:
        with swapped(asyncio, sleep=sleep), swapped(time, time=clock):
            _aio.run(_main.produce(queue, name, pipeline))
    except _TickDone:
        pass
    return queue.items


def _record(job: str, start_time_ms: int, params: Dict) -> Any:
    """A queue record made as main.py's ``Job`` would be, for a run without a tick."""
    fields = {
        "name": job,
        "start_time_ms": start_time_ms,
        "start_time_s": start_time_ms // 1000,
        "params": params,
    }
    cls = getattr(_main, "Job", None)
    if cls is not None and dataclasses.is_dataclass(cls):
        names = {f.name for f in dataclasses.fields(cls) if f.init}
        return cls(**{k: v for k, v in fields.items() if k in names})
    return SimpleNamespace(**fields)


def run(job: str, pipeline_name: str, start_time_ms: int, params: Dict, call: Callable) -> None:
    """One run of ``job`` through main.py. ``call(record)`` calls the job as jobs.py's are
    called, for a main.py without ``consume``."""
    from . import _aio

    raw = _context.pipeline_config()
    pipeline = json.loads(raw) if raw is not None else None
    if pipeline is not None:
        # The runner decided this run, with these params (a run by hand may give its own,
        # or run a disabled job): the tick's producer sees its job so.
        for entry in pipeline.get("jobs", []):
            if isinstance(entry, dict) and entry.get("name") == job:
                entry["params"], entry["enabled"] = params, True
    _setup(pipeline_name, pipeline)
    if pipeline is not None and callable(getattr(_main, "produce", None)):
        put = _tick(pipeline_name, pipeline, start_time_ms / 1e3)
        mine = [r for r in put if getattr(r, "name", None) == job]
        if not mine:
            # Its own job is shown enabled to the tick: a producer that did not put it
            # decided so, and a run that did nothing is not reported `ok`.
            from .errors import Failed

            raise Failed(
                f"main.py's produce() put no job '{job}' on the queue in this tick "
                f"(it put: {', '.join(str(getattr(r, 'name', r)) for r in put) or 'nothing'})"
            )
    else:
        mine = [_record(job, start_time_ms, params)]
    consume = getattr(_main, "consume", None)
    if not callable(consume):
        for record in mine:
            call(record)
        return
    try:
        _aio.run(consume(_RunQueue(mine)))
    except _Consumed:
        pass
