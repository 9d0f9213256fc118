"""aiohttp's client, as tglib services use it, over the runner's outbound HTTP
(:mod:`tgrun.http`): ``ClientSession`` and its ``get``/``post``/``put``/``patch``/
``delete``/``head``/``request`` (awaited or ``async with``), ``ClientResponse``,
``ClientTimeout`` and the client's exceptions, with aiohttp's names and behaviour.

A request goes only to an origin the job's ``allowed_outbound_hosts`` lists; one refused is
a ``ClientConnectorError`` (a ``ClientConnectionError``), a timeout ``asyncio.TimeoutError``,
as aiohttp raises them. The body is read whole when the answer arrives (a run's answer is
charged to its memory budget as it comes)."""

import asyncio
import json as _json
from typing import Any, Iterable, Mapping, Optional, Union
from urllib.parse import urlencode, urlsplit

from tgrun import http as _http

from . import _url
from tgrun.errors import InvalidArgument, LimitExceeded, NotPermitted, Upstream


class ClientError(Exception):
    """aiohttp's base of client errors."""


class ClientConnectionError(ClientError):
    pass


class ClientOSError(ClientConnectionError, OSError):
    pass


class ConnectionKey:
    """Where a connection goes: ``host``, ``port`` and ``ssl`` (``True``: the default
    context)."""

    def __init__(self, host: str, port: Optional[int], ssl: Any = True) -> None:
        self.host, self.port, self.ssl = host, port, ssl


class ClientConnectorError(ClientOSError):
    """No connection to the origin: refused by the runner (not an allowed origin or
    address) or by the network."""

    def __init__(self, connection_key: ConnectionKey, os_error: OSError) -> None:
        self._key, self._os_error = connection_key, os_error
        super().__init__(os_error.errno, os_error.strerror)
        self.args = (connection_key, os_error)

    @property
    def os_error(self) -> OSError:
        return self._os_error

    @property
    def host(self) -> str:
        return self._key.host

    @property
    def port(self) -> Optional[int]:
        return self._key.port

    @property
    def ssl(self) -> Any:
        return self._key.ssl

    def __str__(self) -> str:
        ssl = "default" if self.ssl is True else self.ssl
        return f"Cannot connect to host {self.host}:{self.port} ssl:{ssl} [{self.strerror}]"

    __reduce__ = BaseException.__reduce__


class ClientConnectorDNSError(ClientConnectorError):
    pass


class ServerConnectionError(ClientConnectionError):
    pass


class ServerDisconnectedError(ServerConnectionError):
    def __init__(self, message: Any = None) -> None:
        message = "Server disconnected" if message is None else message
        super().__init__(message)
        self.args = (message,)
        self.message = message


class ServerTimeoutError(ServerConnectionError, asyncio.TimeoutError):
    pass


class ConnectionTimeoutError(ServerTimeoutError):
    pass


class ClientPayloadError(ClientError):
    pass


class InvalidURL(ClientError, ValueError):
    """A URL no request can go to; ``str()`` is the URL, then `` - `` and why."""

    def __init__(self, url: Any, description: Optional[str] = None) -> None:
        self._url, self._description = url, description
        super().__init__(*((url, description) if description else (url,)))

    @property
    def url(self) -> Any:
        return self._url

    @property
    def description(self) -> Optional[str]:
        return self._description

    def __str__(self) -> str:
        return f"{self._url} - {self._description}" if self._description else str(self._url)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self}>"


class InvalidUrlClientError(InvalidURL):
    pass


class NonHttpUrlClientError(ClientError):
    pass


class ClientResponseError(ClientError):
    def __init__(self, request_info=None, history=(), *, status=None, message="", headers=None):
        self.request_info, self.history = request_info, history
        self.status = 0 if status is None else status
        self.message, self.headers = message, headers
        super().__init__(request_info, history)

    def __str__(self) -> str:
        said = f"{self.status}, message={self.message!r}"
        if self.request_info is None:
            return said
        return f"{said}, url={str(self.request_info.real_url)!r}"

    def __repr__(self) -> str:
        shown = [repr(self.request_info), repr(self.history)]
        if self.status != 0:
            shown.append(f"status={self.status!r}")
        if self.message != "":
            shown.append(f"message={self.message!r}")
        if self.headers is not None:
            shown.append(f"headers={self.headers!r}")
        return f"{type(self).__name__}({', '.join(shown)})"


class ContentTypeError(ClientResponseError):
    pass


class ClientTimeout:
    """The time a request may take, in seconds; ``total`` is the whole exchange (the
    others are accepted, and the shortest given bounds it)."""

    def __init__(self, total=None, connect=None, sock_read=None, sock_connect=None, ceil_threshold=5):
        self.total, self.connect, self.sock_read, self.sock_connect = (
            total,
            connect,
            sock_read,
            sock_connect,
        )
        self.ceil_threshold = ceil_threshold

    def seconds(self) -> Optional[float]:
        given = [t for t in (self.total, self.connect, self.sock_read, self.sock_connect) if t]
        return min(given) if given else None


class TCPConnector:
    """Accepted for compatibility: the runner pools connections itself."""

    def __init__(self, *args, **kwargs) -> None:
        pass

    async def close(self) -> None:
        pass


class _Headers(dict):
    """Case-insensitive headers (aiohttp's ``CIMultiDictProxy``), first value per name."""

    def __init__(self, pairs: Iterable = ()) -> None:
        super().__init__()
        for k, v in pairs:
            if k.lower() not in self:
                super().__setitem__(k.lower(), v)

    def __getitem__(self, key: str) -> str:
        return super().__getitem__(key.lower())

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())

    def get(self, key: str, default=None):
        return super().get(key.lower(), default)


class StreamReader:
    """``resp.content``: the answer's body read in parts, as aiohttp's ``StreamReader``
    gives it (the runner has the body whole: it was paid for as it arrived)."""

    def __init__(self, body: bytes) -> None:
        self._body, self._at = body, 0

    def at_eof(self) -> bool:
        return self._at >= len(self._body)

    def _take(self, n: int) -> bytes:
        part = self._body[self._at : self._at + n]
        self._at += len(part)
        return part

    async def read(self, n: int = -1) -> bytes:
        return self._take(len(self._body) if n < 0 else n)

    async def readany(self) -> bytes:
        return self._take(len(self._body))

    async def readexactly(self, n: int) -> bytes:
        part = self._take(n)
        if len(part) < n:
            raise asyncio.IncompleteReadError(part, n)
        return part

    async def readuntil(self, separator: bytes = b"\n") -> bytes:
        end = self._body.find(separator, self._at)
        return self._take(len(self._body) if end < 0 else end + len(separator) - self._at)

    async def readline(self) -> bytes:
        return await self.readuntil(b"\n")

    async def iter_chunked(self, n: int):
        while not self.at_eof():
            yield self._take(n)

    async def iter_any(self):
        while not self.at_eof():
            yield self._take(len(self._body))

    async def iter_chunks(self):
        while not self.at_eof():
            yield self._take(len(self._body)), True

    def __aiter__(self):
        return self._lines()

    async def _lines(self):
        while not self.at_eof():
            yield await self.readline()


class RequestInfo:
    def __init__(self, method: str, url: str, headers) -> None:
        self.method, self.url, self.real_url, self.headers = method, url, url, headers


class ClientResponse:
    def __init__(self, method: str, answer, request_headers) -> None:
        self.method = method
        self.status: int = answer.status
        self.reason: str = answer.reason
        self.headers = _Headers(answer.headers)
        self.url = answer.url
        self.real_url = answer.url
        self.history = ()
        self.request_info = RequestInfo(method, answer.url, request_headers)
        self._body: bytes = answer.body
        self.content = StreamReader(self._body)

    @property
    def ok(self) -> bool:
        return self.status < 400

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "application/octet-stream").split(";")[0].strip().lower()

    @property
    def charset(self) -> Optional[str]:
        for part in self.headers.get("content-type", "").split(";")[1:]:
            k, _, v = part.strip().partition("=")
            if k.lower() == "charset":
                return v.strip('"') or None
        return None

    async def read(self) -> bytes:
        return self._body

    async def text(self, encoding: Optional[str] = None, errors: str = "strict") -> str:
        return self._body.decode(encoding or self.charset or "utf-8", errors)

    async def json(self, *, encoding: Optional[str] = None, loads=_json.loads, content_type: Optional[str] = "application/json") -> Any:
        if content_type:
            mime = self.content_type
            if not (mime == content_type or (content_type == "application/json" and mime.endswith("+json"))):
                raise ContentTypeError(
                    self.request_info,
                    self.history,
                    status=self.status,
                    message=f"Attempt to decode JSON with unexpected mimetype: {mime}",
                    headers=self.headers,
                )
        text = self._body.decode(encoding or self.charset or "utf-8")
        if not text.strip():
            return None
        return loads(text)

    def raise_for_status(self) -> None:
        if self.status >= 400:
            raise ClientResponseError(
                self.request_info,
                self.history,
                status=self.status,
                message=self.reason,
                headers=self.headers,
            )

    def release(self) -> None:
        pass

    def close(self) -> None:
        pass

    async def __aenter__(self) -> "ClientResponse":
        return self

    async def __aexit__(self, *exc) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"<ClientResponse({self.url}) [{self.status} {self.reason}]>"


class _RequestContextManager:
    """What ``session.get(...)`` gives: awaited, the response; ``async with``, the same."""

    def __init__(self, coro) -> None:
        self._coro = coro
        self._resp: Optional[ClientResponse] = None

    def __await__(self):
        return self._coro.__await__()

    async def __aenter__(self) -> ClientResponse:
        self._resp = await self._coro
        return self._resp

    async def __aexit__(self, *exc) -> None:
        if self._resp is not None:
            self._resp.release()


def _failed(url: str, e: Exception) -> Exception:
    """The aiohttp exception for a request the runner could not complete."""
    said = str(e)
    parts = urlsplit(url)
    key = ConnectionKey(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
    if isinstance(e, NotPermitted):
        return ClientConnectorError(key, OSError(None, said))
    if isinstance(e, InvalidArgument):
        if said.startswith("url "):
            return InvalidUrlClientError(url, said)
        return ValueError(said)
    if isinstance(e, LimitExceeded):
        return ClientPayloadError(said)
    if said.startswith("timed out"):
        return asyncio.TimeoutError(said)
    if "dns error" in said:
        return ClientConnectorDNSError(key, OSError(None, said))
    if "(Connect)" in said:
        return ClientConnectorError(key, OSError(None, said))
    if "connection closed before message completed" in said:
        return ServerDisconnectedError()
    return ClientOSError(None, said)


class ClientSession:
    """aiohttp's session: defaults for its requests (``base_url``, ``headers``,
    ``timeout``, ``raise_for_status``). Nothing persists between requests beyond them: no
    cookies are kept, as in the runner."""

    def __init__(
        self,
        base_url: Optional[str] = None,
        *,
        connector=None,
        headers: Optional[Mapping[str, str]] = None,
        timeout: Optional[ClientTimeout] = None,
        raise_for_status: bool = False,
        json_serialize=_json.dumps,
        **ignored,
    ) -> None:
        self._base = base_url
        self._headers = dict(headers or {})
        self._timeout = timeout or ClientTimeout(total=300)
        self._raise = raise_for_status
        self._dumps = json_serialize
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    async def close(self) -> None:
        self._closed = True

    async def __aenter__(self) -> "ClientSession":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    def request(self, method: str, url: str, **kwargs) -> _RequestContextManager:
        return _RequestContextManager(self._request(method, url, **kwargs))

    def get(self, url: str, **kwargs) -> _RequestContextManager:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs) -> _RequestContextManager:
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs) -> _RequestContextManager:
        return self.request("PUT", url, **kwargs)

    def patch(self, url: str, **kwargs) -> _RequestContextManager:
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str, **kwargs) -> _RequestContextManager:
        return self.request("DELETE", url, **kwargs)

    def head(self, url: str, **kwargs) -> _RequestContextManager:
        return self.request("HEAD", url, **kwargs)

    def options(self, url: str, **kwargs) -> _RequestContextManager:
        return self.request("OPTIONS", url, **kwargs)

    async def _request(
        self,
        method: str,
        url: Union[str, Any],
        *,
        params=None,
        data=None,
        json: Any = None,
        headers: Optional[Mapping[str, str]] = None,
        timeout: Optional[ClientTimeout] = None,
        raise_for_status: Optional[bool] = None,
        **ignored,
    ) -> ClientResponse:
        if self._closed:
            raise RuntimeError("Session is closed")
        if data is not None and json is not None:
            raise ValueError("data and json parameters can not be used at the same time")
        url = str(url)
        if self._base and "://" not in url:
            url = self._base.rstrip("/") + "/" + url.lstrip("/")
        if urlsplit(url).scheme.lower() not in ("http", "https"):
            raise NonHttpUrlClientError(url)
        url = _url.build(url, params)
        sent = {**self._headers, **dict(headers or {})}
        lower = {k.lower() for k in sent}
        if "accept" not in lower:
            sent["Accept"] = "*/*"
        body = b""
        if json is not None:
            body = self._dumps(json).encode()
            if "content-type" not in lower:
                sent["Content-Type"] = "application/json"
        elif isinstance(data, Mapping) or isinstance(data, (list, tuple)):
            items = data.items() if isinstance(data, Mapping) else data
            body = urlencode(list(items), doseq=True).encode()
            if "content-type" not in lower:
                sent["Content-Type"] = "application/x-www-form-urlencoded"
        elif isinstance(data, str):
            body = data.encode()
            if "content-type" not in lower:
                sent["Content-Type"] = "text/plain; charset=utf-8"
        elif data is not None:
            body = bytes(data)
            if "content-type" not in lower:
                sent["Content-Type"] = "application/octet-stream"
        given = timeout or self._timeout
        limit = given.seconds() if isinstance(given, ClientTimeout) else given
        try:
            answer = _http.send(method, url, list(sent.items()), body, limit)
        except (NotPermitted, InvalidArgument, LimitExceeded, Upstream) as e:
            raise _failed(url, e) from None
        resp = ClientResponse(method.upper(), answer, sent)
        if self._raise if raise_for_status is None else raise_for_status:
            resp.raise_for_status()
        return resp


def request(method: str, url: str, **kwargs) -> _RequestContextManager:
    """aiohttp's module-level ``request``: one request in a session of its own."""
    return ClientSession().request(method, url, **kwargs)
