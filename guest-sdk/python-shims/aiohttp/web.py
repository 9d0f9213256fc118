"""aiohttp.web's names as a tglib service's routes use them: ``RouteTableDef``,
``Request``, ``Response``, ``json_response`` and the ``HTTP*`` exceptions (raised, they
answer with their status, as in aiohttp)."""

import json as _json
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple
from urllib.parse import urlencode


class MultiDict:
    """Pairs in order, a key possibly repeated (aiohttp's ``MultiDictProxy``)."""

    def __init__(self, pairs: Iterable[Tuple[str, str]] = ()):
        self._pairs = list(pairs)

    def get(self, key: str, default: Any = None) -> Any:
        for k, v in self._pairs:
            if k == key:
                return v
        return default

    def getone(self, key: str, default: Any = ...) -> Any:
        value = self.get(key, default)
        if value is ...:
            raise KeyError(key)
        return value

    def getall(self, key: str, default: Any = ...) -> List[Any]:
        values = [v for k, v in self._pairs if k == key]
        if not values:
            if default is ...:
                raise KeyError(key)
            return default
        return values

    def __getitem__(self, key: str) -> Any:
        return self.getone(key)

    def __contains__(self, key: object) -> bool:
        return any(k == key for k, _ in self._pairs)

    def keys(self) -> List[str]:
        return [k for k, _ in self._pairs]

    def values(self) -> List[Any]:
        return [v for _, v in self._pairs]

    def items(self) -> List[Tuple[str, Any]]:
        return list(self._pairs)

    def __iter__(self):
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self._pairs)

    def __repr__(self) -> str:
        return f"<MultiDict({self._pairs!r})>"


class CIMultiDict(MultiDict):
    """Header names, matched whatever their case."""

    def __init__(self, pairs: Iterable[Tuple[str, str]] = ()):
        super().__init__((k.lower(), v) for k, v in pairs)

    def get(self, key: str, default: Any = None) -> Any:
        return super().get(key.lower(), default)

    def getall(self, key: str, default: Any = ...) -> List[Any]:
        return super().getall(key.lower(), default)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and super().__contains__(key.lower())


class URL:
    """A request's relative URL: ``path``, ``query`` and ``query_string``."""

    def __init__(self, path: str, query: MultiDict):
        self.path = path
        self.query = query
        self.query_string = urlencode(query.items())

    def __str__(self) -> str:
        return self.path + (f"?{self.query_string}" if self.query_string else "")


class Request:
    """The request a route answers."""

    def __init__(
        self,
        method: str,
        path: str,
        query: Iterable[Tuple[str, str]],
        headers: Iterable[Tuple[str, str]],
        body: bytes,
        match_info: Optional[Dict[str, str]] = None,
    ):
        self.method = method
        self.path = path
        self.query = MultiDict(query)
        self.rel_url = URL(path, self.query)
        self.headers = CIMultiDict(headers)
        self.match_info = dict(match_info or {})
        self._body = bytes(body)

    @property
    def query_string(self) -> str:
        return self.rel_url.query_string

    @property
    def content_type(self) -> str:
        return (self.headers.get("content-type") or "application/octet-stream").split(";")[0].strip()

    @property
    def body_exists(self) -> bool:
        return bool(self._body)

    @property
    def can_read_body(self) -> bool:
        return bool(self._body)

    async def read(self) -> bytes:
        return self._body

    async def text(self) -> str:
        return self._body.decode("utf-8")

    async def json(self, *, loads: Callable[[str], Any] = _json.loads) -> Any:
        return loads(await self.text())

    def __getitem__(self, key: str) -> Any:
        raise KeyError(key)


class StreamResponse:
    """What a handler answers: a status, headers and a body."""

    def __init__(self, *, status: int = 200, reason: Optional[str] = None, headers=None):
        self.status = int(status)
        self.reason = reason
        self.headers: Dict[str, str] = dict(headers or {})


class Response(StreamResponse):
    """``Response(text=...)``, ``Response(body=...)``, with ``status``, ``headers`` and
    ``content_type`` as aiohttp takes them."""

    def __init__(
        self,
        *,
        body: Any = None,
        status: int = 200,
        reason: Optional[str] = None,
        text: Optional[str] = None,
        headers: Optional[Dict[str, str]] = None,
        content_type: Optional[str] = None,
        charset: Optional[str] = None,
    ):
        super().__init__(status=status, reason=reason, headers=headers)
        if body is not None and text is not None:
            raise ValueError("body and text are not allowed together")
        if text is not None:
            if not isinstance(text, str):
                raise TypeError(f"text argument must be str ({type(text).__name__!r} is given)")
            self.body = text.encode(charset or "utf-8")
            content_type = content_type or "text/plain"
            charset = charset or "utf-8"
        elif isinstance(body, str):
            self.body = body.encode(charset or "utf-8")
        else:
            self.body = bytes(body or b"")
        if content_type is not None and not any(k.lower() == "content-type" for k in self.headers):
            self.headers["Content-Type"] = f"{content_type}; charset={charset}" if charset else content_type

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")


def json_response(
    data: Any = ...,
    *,
    text: Optional[str] = None,
    body: Any = None,
    status: int = 200,
    reason: Optional[str] = None,
    headers: Optional[Dict[str, str]] = None,
    content_type: str = "application/json",
    dumps: Callable[[Any], str] = _json.dumps,
) -> Response:
    """``data`` as JSON with ``dumps`` (aiohttp's signature)."""
    if data is not ...:
        if text is not None or body is not None:
            raise ValueError("only one of data, text, or body should be specified")
        text = dumps(data)
    return Response(
        text=text, body=body, status=status, reason=reason, headers=headers, content_type=content_type
    )


class HTTPException(Response, Exception):
    """Raised by a handler, answered with its ``status_code``."""

    status_code = -1

    def __init__(
        self,
        *,
        headers: Optional[Dict[str, str]] = None,
        reason: Optional[str] = None,
        body: Any = None,
        text: Optional[str] = None,
        content_type: Optional[str] = None,
    ):
        if body is None and text is None:
            text = f"{self.status_code}: {reason or _REASONS.get(self.status_code, '')}"
        Response.__init__(
            self,
            status=self.status_code,
            headers=headers,
            reason=reason,
            body=body,
            text=text,
            content_type=content_type,
        )
        Exception.__init__(self, self.reason or _REASONS.get(self.status_code, ""))


_REASONS: Dict[int, str] = {}


def _http(name: str, code: int, reason: str, base=HTTPException):
    _REASONS[code] = reason
    cls = type(name, (base,), {"status_code": code, "__doc__": f"{code} {reason}"})
    globals()[name] = cls
    return cls


class HTTPSuccessful(HTTPException):
    pass


class HTTPRedirection(HTTPException):
    pass


class HTTPError(HTTPException):
    pass


class HTTPClientError(HTTPError):
    pass


class HTTPServerError(HTTPError):
    pass


for _name, _code, _reason, _base in [
    ("HTTPOk", 200, "OK", HTTPSuccessful),
    ("HTTPCreated", 201, "Created", HTTPSuccessful),
    ("HTTPAccepted", 202, "Accepted", HTTPSuccessful),
    ("HTTPNoContent", 204, "No Content", HTTPSuccessful),
    ("HTTPMovedPermanently", 301, "Moved Permanently", HTTPRedirection),
    ("HTTPFound", 302, "Found", HTTPRedirection),
    ("HTTPNotModified", 304, "Not Modified", HTTPRedirection),
    ("HTTPBadRequest", 400, "Bad Request", HTTPClientError),
    ("HTTPUnauthorized", 401, "Unauthorized", HTTPClientError),
    ("HTTPForbidden", 403, "Forbidden", HTTPClientError),
    ("HTTPNotFound", 404, "Not Found", HTTPClientError),
    ("HTTPMethodNotAllowed", 405, "Method Not Allowed", HTTPClientError),
    ("HTTPConflict", 409, "Conflict", HTTPClientError),
    ("HTTPGone", 410, "Gone", HTTPClientError),
    ("HTTPRequestEntityTooLarge", 413, "Request Entity Too Large", HTTPClientError),
    ("HTTPUnsupportedMediaType", 415, "Unsupported Media Type", HTTPClientError),
    ("HTTPUnprocessableEntity", 422, "Unprocessable Entity", HTTPClientError),
    ("HTTPTooManyRequests", 429, "Too Many Requests", HTTPClientError),
    ("HTTPInternalServerError", 500, "Internal Server Error", HTTPServerError),
    ("HTTPNotImplemented", 501, "Not Implemented", HTTPServerError),
    ("HTTPBadGateway", 502, "Bad Gateway", HTTPServerError),
    ("HTTPServiceUnavailable", 503, "Service Unavailable", HTTPServerError),
    ("HTTPGatewayTimeout", 504, "Gateway Timeout", HTTPServerError),
]:
    _http(_name, _code, _reason, _base)


class RouteDef:
    """One route: ``method``, ``path`` (``{name}`` parts match one path segment) and its
    ``handler``."""

    def __init__(self, method: str, path: str, handler: Callable, kwargs: Dict[str, Any]):
        self.method = method.upper()
        self.path = path
        self.handler = handler
        self.kwargs = kwargs

    def match(self, method: str, path: str) -> Optional[Dict[str, str]]:
        """The ``match_info`` if this route answers ``method path``, else ``None``. A GET
        route answers HEAD too, unless registered with ``allow_head=False`` (aiohttp's)."""
        method = method.upper()
        head = method == "HEAD" and self.method == "GET" and self.kwargs.get("allow_head", True)
        if self.method not in (method, "*") and not head:
            return None
        mine, theirs = self.path.strip("/").split("/"), path.strip("/").split("/")
        if len(mine) != len(theirs):
            return None
        info: Dict[str, str] = {}
        for want, got in zip(mine, theirs):
            if want.startswith("{") and want.endswith("}"):
                if not got:
                    return None
                info[want[1:-1].split(":")[0]] = got
            elif want != got:
                return None
        return info

    def __repr__(self) -> str:
        return f"<RouteDef {self.method} {self.path} -> {getattr(self.handler, '__name__', self.handler)!r}>"


class RouteTableDef:
    """``routes = web.RouteTableDef()``, then ``@routes.get("/path")`` on handlers."""

    def __init__(self):
        self._items: List[RouteDef] = []

    def route(self, method: str, path: str, **kwargs):
        def register(handler):
            self._items.append(RouteDef(method, path, handler, kwargs))
            return handler

        return register

    def get(self, path: str, **kwargs):
        return self.route("GET", path, **kwargs)

    def head(self, path: str, **kwargs):
        return self.route("HEAD", path, **kwargs)

    def post(self, path: str, **kwargs):
        return self.route("POST", path, **kwargs)

    def put(self, path: str, **kwargs):
        return self.route("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs):
        return self.route("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs):
        return self.route("DELETE", path, **kwargs)

    def __iter__(self):
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: int) -> RouteDef:
        return self._items[index]

    def __repr__(self) -> str:
        return f"<RouteTableDef count={len(self._items)}>"
