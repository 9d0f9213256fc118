"""Outbound HTTP from a job, to the origins its ``allowed_outbound_hosts`` lists and nothing
else. A tglib service uses it through ``aiohttp.ClientSession`` (tgrun's aiohttp); a job may
call :func:`send` itself.

``timeout`` is in seconds. A refused origin raises ``NotPermitted``, an answer past the
run's memory ``LimitExceeded``, a failed exchange ``Upstream`` (a timeout's message starts
with ``timed out``)."""

from dataclasses import dataclass
from typing import List, Optional, Tuple

from wit_world.imports import http as _host

from .errors import host_call


@dataclass
class Answer:
    status: int
    reason: str
    headers: List[Tuple[str, str]]
    body: bytes
    url: str


def send(
    method: str,
    url: str,
    headers: Optional[List[Tuple[str, str]]] = None,
    body: bytes = b"",
    timeout: Optional[float] = None,
) -> Answer:
    """Sends one request and answers its response, body whole."""
    millis = None if timeout is None else max(0, min(int(timeout * 1000), 2**32 - 1))
    req = _host.OutboundRequest(method.upper(), url, list(headers or []), bytes(body), millis)
    r = host_call(_host.send, req)
    return Answer(r.status, r.reason, list(r.headers), bytes(r.body), r.url)
