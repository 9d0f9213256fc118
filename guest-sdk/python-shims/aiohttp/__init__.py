"""The part of aiohttp a tglib service uses, for the tgrun sandbox: its ``web`` module's
route table, request, responses and HTTP exceptions, over the runner's route handlers, and
the client's exception classes (services name them in ``except`` clauses). There is no
server, client or socket here: the runner's HTTP server takes the request, and a fresh
instance of the service's component answers it. The client itself (``ClientSession``)
is not here yet: the sandbox grants no outbound HTTP, and using it says so."""

from . import web


class ClientError(Exception):
    """aiohttp's base of client errors."""


class ClientConnectionError(ClientError):
    pass


class ClientResponseError(ClientError):
    def __init__(self, request_info=None, history=(), *, status=None, message="", headers=None):
        super().__init__(f"{status}, message={message!r}")
        self.request_info, self.history = request_info, history
        self.status, self.message, self.headers = status, message, headers


_CLIENT = ("ClientSession", "ClientTimeout", "TCPConnector", "request", "ClientResponse")

__all__ = ["web", "ClientError", "ClientConnectionError", "ClientResponseError"]


def __getattr__(name: str):
    if name in _CLIENT:
        raise AttributeError(
            f"aiohttp.{name} is not in tgrun's aiohttp: the sandbox has no outbound HTTP "
            "client yet (a job reaches Prometheus, the API service and the database through "
            "tglib's clients)"
        )
    raise AttributeError(f"module 'aiohttp' has no attribute '{name}'")
