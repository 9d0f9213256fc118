"""tglib's ``PrometheusClient`` over the runner's Prometheus client: the same class,
static and instance methods, arguments, answers (Prometheus' JSON as a ``dict``) and
exceptions (``ValueError`` for a bad step or range, ``ClientRuntimeError`` for a failed
request).

Differences a job may notice: ``timeout`` is kept but the runner's own request timeout and
the job's ``timeout_s`` apply; ``start``/``stop`` belong to the runner (``start`` raises
``ClientRestartError``, ``stop`` does nothing); ``write_metrics`` hands the series to the
runner's ``/metrics`` at once, and ``poll_metrics`` answers what this run wrote since its
last poll (the runner's scrape is what Prometheus reads).
"""

import logging
import re
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Pattern, Union

from tgrun import prometheus as _prom
from tgrun.prometheus import consts, ops

from ..exceptions import client_call
from .base_client import BaseClient

__all__ = ["PrometheusClient", "PrometheusMetric", "consts", "ops"]

_log = logging.getLogger(__name__)
_DURATION = re.compile("^[0-9]+[smhdw]$")


@dataclass
class PrometheusMetric:
    """One sample to write: ``time`` in ms since the Unix epoch, or none for the scrape's."""

    name: str
    labels: Dict[str, Any]
    value: Union[int, float]
    time: Optional[int] = None


def _label_text(value: Any) -> str:
    # A label value as tglib's format_query writes it, before normalizing.
    return str(value).lower() if isinstance(value, bool) else str(value)


def _check_range(step: str, start, end):
    if end is None:
        end = int(round(time.time()))
    if not _DURATION.match(step):
        raise ValueError(f"Step resolution must match: {_DURATION.pattern}")
    if start > end:
        raise ValueError(f"Start time cannot be after end time: {start} > {end}")
    return end


class PrometheusClient(BaseClient):
    """Reads and writes Prometheus series. ``timeout``: seconds, as tglib's."""

    # What this run wrote, as tglib's cache keeps it: series -> (value, time).
    _written: Dict[str, tuple] = {}

    def __init__(self, timeout: int) -> None:
        self.timeout = timeout

    @staticmethod
    def duration2seconds(duration: str) -> int:
        """``"2m"`` gives 120; a string that is not a duration is a ``ValueError``."""
        return _prom.duration2seconds(duration)

    @staticmethod
    def normalize(value: str) -> str:
        """``.``, ``-``, ``/``, ``[`` and ``]`` become ``_``, as Prometheus names need."""
        for c in ".-/[]":
            value = value.replace(c, "_")
        return value

    @staticmethod
    def format_query(
        metric_name: str,
        labels: Dict[str, Any] = {},  # noqa: B006 (tglib's signature; never mutated)
        negate_labels: Dict[str, Any] = {},  # noqa: B006
    ) -> str:
        """``name{a="x",b=~"re",c!="y",d!~"re"}``, as tglib builds it: a compiled pattern
        matches as a regex, booleans are ``true``/``false``, and the label part is
        normalized (see :meth:`normalize`) as tglib does."""
        matchers = []
        for negate, given in ((False, labels), (True, negate_labels)):
            for name, val in given.items():
                if isinstance(val, Pattern):
                    matchers.append(f'{name}{"!~" if negate else "=~"}"{val.pattern}"')
                    continue
                matchers.append(f'{name}{"!=" if negate else "="}"{_label_text(val)}"')
        label_str = PrometheusClient.normalize(",".join(matchers))
        return f"{metric_name}{{{label_str}}}" if label_str else metric_name

    @classmethod
    def write_metrics(cls, metrics: List[PrometheusMetric]) -> None:
        """Hands the samples to the runner, which serves them at ``/metrics``; a later
        sample of the same series replaces the earlier one.

        The series are tglib's: label names and values written as :meth:`format_query`
        writes them (booleans ``true``/``false``, then normalized). A sample whose value is
        ``None`` is left out with a warning naming its series: tglib would write the word
        ``None``, which Prometheus refuses, losing the whole scrape."""
        samples = []
        for m in metrics:
            series = cls.format_query(m.name, m.labels)
            if m.value is None:
                _log.warning("metric %s has no value (None): not written", series)
                continue
            labels = {cls.normalize(str(k)): cls.normalize(_label_text(v)) for k, v in m.labels.items()}
            samples.append((series, m, _prom.PrometheusMetric(m.name, labels, m.value, m.time)))
        client_call(_prom.write_metrics, [wire for _, _, wire in samples])
        for series, m, _ in samples:
            cls._written[series] = (m.value, m.time)

    @classmethod
    def poll_metrics(cls) -> List[str]:
        """What this run wrote since its last poll, one ``series value [time]`` a line."""
        lines = [f"{series} {value} {ts or ''}".rstrip() for series, (value, ts) in cls._written.items()]
        cls._written.clear()
        return lines

    async def query_range(
        self, query: str, step: str, start: int, end: Optional[int] = None
    ) -> Dict:
        """The range query without stale samples and values held across steps."""
        end = _check_range(step, start, end)
        return dict(client_call(_prom.query_range, query, step, start, end))

    async def query_range_raw(
        self, query: str, step: str, start: int, end: Optional[int] = None
    ) -> Dict:
        """``/api/v1/query_range`` as Prometheus answers it."""
        end = _check_range(step, start, end)
        return dict(client_call(_prom.query_range_raw, query, step, start, end))

    async def query_latest(self, query: str, time: Optional[int] = None) -> Dict:
        """``/api/v1/query`` at ``time`` (seconds), or Prometheus' now."""
        return dict(client_call(_prom.query_latest, query, time))

    async def query_range_ts(
        self, query: str, step: str, start: int, end: Optional[int] = None
    ) -> Dict:
        """The raw range query of ``timestamp(query)``."""
        return await self.query_range_raw(f"timestamp({query})", step, start, end)

    async def query_latest_ts(self, query: str, time: Optional[int] = None) -> Dict:
        """The latest ``timestamp(query)``."""
        return await self.query_latest(f"timestamp({query})", time)
