"""Prometheus from a job, with tglib's names: build PromQL with ``format_query``, read with
``query_latest``/``query_range``, write series that the runner serves at ``/metrics``.

Answers are Prometheus' JSON as a ``dict`` (``response["status"]`` as in tglib), with typed
accessors: ``response.vector()``, ``.matrix()``, ``.scalar()``.
"""

import json
import re
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Dict, List, Optional, Tuple

from wit_world.imports import prometheus as _host

from .errors import Error, InvalidArgument, host_call

# -- PromQL -------------------------------------------------------------------------------


def _matcher(name: str, value, negate: bool) -> str:
    if isinstance(value, re.Pattern):
        return f'{name}{"!~" if negate else "=~"}"{value.pattern}"'
    if isinstance(value, bool):
        value = "true" if value else "false"
    return f'{name}{"!=" if negate else "="}"{value}"'


def format_query(
    metric_name: str, labels: Optional[Dict] = None, negate_labels: Optional[Dict] = None
) -> str:
    """tglib's ``format_query``: ``name{a="x",b=~"re",c!="y",d!~"re"}``.

    A ``re.compile(...)`` value matches as a regex; booleans are ``true``/``false``;
    labels keep their order, negated ones after; no labels gives the bare name.
    """
    labels = labels or {}
    negate_labels = negate_labels or {}
    if not labels and not negate_labels:
        return metric_name
    matchers = [_matcher(k, v, False) for k, v in labels.items()]
    matchers += [_matcher(k, v, True) for k, v in negate_labels.items()]
    return f"{metric_name}{{{','.join(matchers)}}}"


_DURATION = re.compile(r"^([0-9]+)([smhdw])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def duration2seconds(duration: str) -> int:
    """tglib's ``duration2seconds``: ``"2m"`` gives 120."""
    m = _DURATION.match(duration)
    if not m:
        raise InvalidArgument(
            f"duration {duration!r} must be a whole number and a unit (s, m, h, d, w)"
        )
    return int(m.group(1)) * _UNIT[m.group(2)]


# PromQL functions with tglib's names and signatures (``ops.rate(query, "5m")``,
# ``ops.max_by(query, "linkName")``, ``ops.quantile_over_time(query, "1h", 0.9)``), so a
# ported call builds the same PromQL. A `_by` helper also takes a list of labels.


def _over(f: str):
    def over(query: str, interval: str) -> str:
        return f"{f}({query} [{interval}])"

    over.__name__ = f
    return over


def _labels_of(consts) -> str:
    return consts if isinstance(consts, str) else ", ".join(consts)


def _by(f: str):
    def by(query: str, consts) -> str:
        return f"{f} by ({_labels_of(consts)}) ({query})"

    by.__name__ = f"{f}_by"
    return by


rate = _over("rate")
irate = _over("irate")
increase = _over("increase")
delta = _over("delta")
resets = _over("resets")
changes = _over("changes")
avg_over_time = _over("avg_over_time")
min_over_time = _over("min_over_time")
max_over_time = _over("max_over_time")
sum_over_time = _over("sum_over_time")
count_over_time = _over("count_over_time")
sum_by = _by("sum")
avg_by = _by("avg")
min_by = _by("min")
max_by = _by("max")
count_by = _by("count")


def quantile_over_time(query: str, interval: str, percentile: float) -> str:
    """tglib's argument order: the query, its range, then the quantile."""
    return f"quantile_over_time({percentile}, {query} [{interval}])"


def diff_on(query_1: str, query_2: str, consts) -> str:
    """``query_1 - on (labels) query_2``."""
    return f"{query_1} - on ({_labels_of(consts)}) {query_2}"


def abs(query: str) -> str:  # noqa: A001 (tglib's name)
    return f"abs({query})"


def timestamp(query: str) -> str:
    return f"timestamp({query})"


# tglib's namespaces: `ops` of the functions above, `consts` of Terragraph's label names.
ops = SimpleNamespace(
    **{
        f.__name__: f
        for f in (
            abs, avg_over_time, changes, count_over_time, delta, diff_on, increase, irate,
            max_over_time, min_over_time, quantile_over_time, rate, resets, sum_over_time,
            avg_by, count_by, max_by, min_by, sum_by, timestamp,
        )
    }
)
consts = SimpleNamespace(
    data_interval_s="intervalSec",
    is_cn="cn",
    is_pop="pop",
    link_direction="linkDirection",
    link_name="linkName",
    network="network",
    node_mac="nodeMac",
    node_name="nodeName",
    site_name="siteName",
)


# -- Answers ------------------------------------------------------------------------------


@dataclass
class Sample:
    """One series of an instant vector. ``time`` in seconds since the Unix epoch."""

    labels: Dict[str, str]
    time: float
    value: float


@dataclass
class Series:
    """One series of a range vector: ``(time, value)`` pairs in time order."""

    labels: Dict[str, str]
    values: List[Tuple[float, float]]


def _value(text) -> float:
    # float() reads Prometheus' NaN, +Inf and -Inf as they are written.
    return float(text)


def _pair(v) -> Tuple[float, float]:
    try:
        return float(v[0]), _value(v[1])
    except (TypeError, ValueError, IndexError, KeyError):
        raise Error(f"not a sample: {v!r}") from None


def _labels(item) -> Dict[str, str]:
    return dict(item.get("metric") or {})


class Response(dict):
    """Prometheus' JSON answer as a ``dict``, with typed accessors."""

    @property
    def status(self) -> str:
        return self.get("status", "")

    def _data(self, kind: str):
        if self.status != "success":
            raise Error(f"prometheus answered: {json.dumps(self)}")
        data = self.get("data") or {}
        if data.get("resultType") != kind:
            raise Error(f"expected a {kind}, got {data.get('resultType')!r}")
        return data.get("result")

    def vector(self) -> List[Sample]:
        """The result as an instant vector; an ``Error`` if it is not one."""
        out = []
        for item in self._data("vector") or []:
            time, value = _pair(item.get("value"))
            out.append(Sample(_labels(item), time, value))
        return out

    def matrix(self) -> List[Series]:
        """The result as a range vector; an ``Error`` if it is not one."""
        return [
            Series(_labels(item), [_pair(v) for v in item.get("values") or []])
            for item in self._data("matrix") or []
        ]

    def scalar(self) -> Tuple[float, float]:
        """The result as a scalar ``(time, value)``; an ``Error`` if it is not one."""
        return _pair(self._data("scalar"))


def _answer(raw: str) -> Response:
    return Response(json.loads(raw))


def query_latest(query: str, time: Optional[float] = None) -> Response:
    """GET /api/v1/query: ``query`` now, or at ``time`` (seconds since the epoch)."""
    return _answer(host_call(_host.query_latest, query, None if time is None else float(time)))


def query_latest_ts(query: str, time: Optional[float] = None) -> Response:
    """The timestamps of the latest samples of ``query``."""
    return query_latest(timestamp(query), time)


def _range(query, step, start, end) -> "_host.Range":
    return _host.Range(query, step, float(start), None if end is None else float(end))


def query_range_raw(query: str, step: str, start: float, end: Optional[float] = None) -> Response:
    """GET /api/v1/query_range as is. ``step`` like ``"30s"``; times in epoch seconds."""
    return _answer(host_call(_host.query_range_raw, _range(query, step, start, end)))


def query_range(query: str, step: str, start: float, end: Optional[float] = None) -> Response:
    """A range query without stale and held samples, as tglib's ``query_range``."""
    return _answer(host_call(_host.query_range, _range(query, step, start, end)))


def query_range_ts(query: str, step: str, start: float, end: Optional[float] = None) -> Response:
    """tglib's ``query_range_ts``: the raw range query of ``timestamp(query)``."""
    return query_range_raw(timestamp(query), step, start, end)


# -- Writing ------------------------------------------------------------------------------


@dataclass
class PrometheusMetric:
    """A sample to write, as tglib's ``PrometheusMetric(name, labels, value, time)``:
    ``time`` in ms since the Unix epoch, or none for the scrape's time.

    ``labels`` may be a query result's ``metric`` (its ``__name__`` is left out).
    """

    name: str
    labels: Dict[str, str] = field(default_factory=dict)
    value: float = 0.0
    time: Optional[int] = None

    def _to_wit(self) -> "_host.Metric":
        labels = [(str(k), str(v)) for k, v in (self.labels or {}).items() if k != "__name__"]
        time_ms = None if self.time is None else int(self.time)
        return _host.Metric(self.name, labels, float(self.value), time_ms)


def write_metrics(metrics: List[PrometheusMetric]) -> None:
    """Puts the metrics into the runner's cache, served at ``/metrics``."""
    host_call(_host.write_metrics, [m._to_wit() for m in metrics])
