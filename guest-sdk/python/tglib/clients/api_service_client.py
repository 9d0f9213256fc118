"""tglib's ``APIServiceClient`` over the runner's API service client: the Terragraph
controllers, one per network, with tglib's methods, arguments and answers.

``request`` answers the controller's JSON; ``request_all`` and ``request_many`` answer
``{network: answer}`` and, as tglib's, raise ``ClientRuntimeError`` if a network failed,
unless ``return_exceptions``, which puts that network's ``ClientRuntimeError`` in the dict.
The networks are asked concurrently by the runner.
"""

from typing import Any, Collection, Dict

import tgrun
from tgrun import api_service as _api

from ..exceptions import ClientRuntimeError, client_call
from .base_client import BaseClient

__all__ = ["APIServiceClient"]


class APIServiceClient(BaseClient):
    """Requests to the controllers. ``timeout``: seconds per request, as tglib's."""

    def __init__(self, timeout: int) -> None:
        self.timeout = timeout

    @classmethod
    def network_names(cls) -> Collection[str]:
        """The networks the runner's API service client knows, as tglib's: a collection
        (a dict's keys, in the NMS's order) that ``in``, ``len`` and iteration read.
        Without an API service configured, ``ClientStoppedError``."""
        return dict.fromkeys(client_call(_api.network_names)).keys()

    async def request(
        self,
        network_name: str,
        endpoint: str,
        params: Dict[str, Any] = {},  # noqa: B006 (tglib's signature; never mutated)
    ) -> Any:
        """POSTs ``params`` to ``/api/{endpoint}`` of ``network_name``'s controller. A
        network the runner does not know is a ``ClientRuntimeError``, as tglib's."""
        try:
            return client_call(_api.request, network_name, endpoint, params, self.timeout)
        except tgrun.InvalidArgument as e:
            raise _failed(e) from e

    async def request_all(
        self,
        endpoint: str,
        params_map: Dict[str, Dict[str, Any]] = {},  # noqa: B006
        return_exceptions: bool = False,
    ) -> Dict[str, Any]:
        """Every network (one missing from ``params_map`` gets ``{}``)."""
        return self._answers(_api.request_all, endpoint, params_map, return_exceptions)

    async def request_many(
        self,
        endpoint: str,
        params_map: Dict[str, Dict[str, Any]],
        return_exceptions: bool = False,
    ) -> Dict[str, Any]:
        """Only the networks named in ``params_map``."""
        return self._answers(_api.request_many, endpoint, params_map, return_exceptions)

    def _answers(self, call, endpoint, params_map, return_exceptions: bool) -> Dict[str, Any]:
        answers = client_call(call, endpoint, params_map, self.timeout, True)
        out: Dict[str, Any] = {}
        for network, answer in answers.items():
            if isinstance(answer, tgrun.Error):
                answer = _failed(answer)
                if not return_exceptions:
                    raise answer
            out[network] = answer
        return out


def _failed(e: "tgrun.Error") -> ClientRuntimeError:
    """One network's failure as tglib's client raises any: a ``ClientRuntimeError`` (whose
    cause keeps the runner's kind), which services test with ``isinstance``."""
    err = ClientRuntimeError(str(e))
    err.__cause__ = e
    return err
