"""The part of aiohttp a tglib service uses, for the tgrun sandbox: its ``web`` module's
route table, request, responses and HTTP exceptions, over the runner's route handlers; and
its client (``ClientSession``, ``ClientResponse``, ``ClientTimeout``, the client's
exceptions) over the runner's outbound HTTP, which reaches only the origins the job's
``allowed_outbound_hosts`` lists. There is no server or socket here: the runner's HTTP
server takes a route's request, and a fresh instance of the service's component answers it."""

from . import web
from .client import (
    ClientConnectionError,
    ClientConnectorDNSError,
    ClientConnectorError,
    ClientError,
    ClientOSError,
    ClientPayloadError,
    ClientResponse,
    ClientResponseError,
    ClientSession,
    ClientTimeout,
    ConnectionTimeoutError,
    ContentTypeError,
    InvalidURL,
    InvalidUrlClientError,
    NonHttpUrlClientError,
    RequestInfo,
    ServerConnectionError,
    ServerDisconnectedError,
    ServerTimeoutError,
    StreamReader,
    TCPConnector,
    request,
)

__all__ = [
    "web",
    "ClientConnectionError",
    "ClientConnectorDNSError",
    "ClientConnectorError",
    "ClientError",
    "ClientOSError",
    "ClientPayloadError",
    "ClientResponse",
    "ClientResponseError",
    "ClientSession",
    "ClientTimeout",
    "ConnectionTimeoutError",
    "ContentTypeError",
    "InvalidURL",
    "InvalidUrlClientError",
    "NonHttpUrlClientError",
    "RequestInfo",
    "ServerConnectionError",
    "ServerDisconnectedError",
    "ServerTimeoutError",
    "StreamReader",
    "TCPConnector",
    "request",
]
