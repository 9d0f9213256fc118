"""The Terragraph API service from a job, with tglib's names: one controller per network.

``timeout`` is in seconds, as tglib's ``APIServiceClient(timeout=...)``.
"""

import json
from typing import Any, Dict, List, Optional

from componentize_py_types import Err
from wit_world.imports import api_service as _host

from .errors import Error, Upstream, from_wit, host_call


def _millis(timeout: Optional[float]) -> Optional[int]:
    return None if timeout is None else max(0, min(int(timeout * 1000), 2**32 - 1))


def _wire(params_map: Optional[Dict[str, Any]]):
    return [(name, json.dumps(p)) for name, p in (params_map or {}).items()]


def _answers(results, return_exceptions: bool) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for r in results:
        if isinstance(r.response, Err):
            out[r.network] = from_wit(r.response.value)
        else:
            out[r.network] = json.loads(r.response.value)
    if not return_exceptions:
        failed = {n: e for n, e in out.items() if isinstance(e, Error)}
        if failed:
            detail = "; ".join(f"{n}: {e}" for n, e in sorted(failed.items()))
            raise Upstream(f"{len(failed)} of {len(out)} networks failed: {detail}")
    return out


def network_names() -> List[str]:
    """The names of the networks the runner knows."""
    return host_call(_host.network_names)


def request(
    network: str, endpoint: str, params: Optional[Dict] = None, timeout: Optional[float] = None
) -> Any:
    """POSTs ``params`` to ``endpoint`` (e.g. ``"getTopology"``) of one network's controller."""
    raw = host_call(_host.request, network, endpoint, json.dumps(params or {}), _millis(timeout))
    return json.loads(raw)


def request_all(
    endpoint: str,
    params_map: Optional[Dict[str, Dict]] = None,
    timeout: Optional[float] = None,
    return_exceptions: bool = False,
) -> Dict[str, Any]:
    """Every network, concurrently (a network missing from ``params_map`` gets ``{}``).

    Answers ``{network: answer}``. As tglib's: a failed network raises ``Upstream`` naming
    it, unless ``return_exceptions``, which puts its ``Error`` in the dict instead.
    """
    results = host_call(_host.request_all, endpoint, _wire(params_map), _millis(timeout))
    return _answers(results, return_exceptions)


def request_many(
    endpoint: str,
    params_map: Dict[str, Dict],
    timeout: Optional[float] = None,
    return_exceptions: bool = False,
) -> Dict[str, Any]:
    """Only the networks named in ``params_map``, concurrently; as ``request_all``."""
    results = host_call(_host.request_many, endpoint, _wire(params_map), _millis(timeout))
    return _answers(results, return_exceptions)
