"""The URL a request goes to, written as aiohttp (through yarl) writes it: the path and query
requoted, ``params`` appended with yarl's quoting and yarl's checks of their types, so the
server sees the request line a tglib service sends under aiohttp.

Requoting leaves a character that may stand for itself as it is, decodes an escape of such
a character (``%41`` is ``A``), and escapes the rest in UTF-8 with upper-case hex; a ``%``
not starting an escape becomes ``%25``."""

import math
from typing import Any, Iterable, List, Mapping, Tuple
from urllib.parse import urlsplit, urlunsplit

_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# What an escape in a path or a query is decoded to.
_PATH_PLAIN = _UNRESERVED | frozenset("!$&'()*,:;=@")
_QUERY_PLAIN = _UNRESERVED | frozenset("!$'()*,/:?@")
# What is left as written (the separators keep their meaning).
_PATH_KEPT = _PATH_PLAIN | frozenset("/+")
_QUERY_KEPT = _QUERY_PLAIN | frozenset("&=+;")
# A parameter's name or value: its `&`, `=`, `+` and `;` escaped, a space as `+`.
_PARAM_KEPT = _QUERY_PLAIN
_HEX = "0123456789ABCDEF"


def _escape(ch: str) -> str:
    return "".join(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))


def _requote(text: str, plain: frozenset, kept: frozenset, space: str) -> str:
    out: List[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "%" and _is_hex(text[i + 1 : i + 3]):
            decoded = chr(int(text[i + 1 : i + 3], 16))
            out.append(decoded if decoded in plain else "%" + text[i + 1 : i + 3].upper())
            i += 3
            continue
        if ch in kept:
            out.append(ch)
        elif ch == " ":
            out.append(space)
        else:
            out.append(_escape(ch))
        i += 1
    return "".join(out)


def _is_hex(two: str) -> bool:
    return len(two) == 2 and all(c in _HEX or c in "abcdef" for c in two)


def _quote_param(text: str) -> str:
    return "".join(
        ch if ch in _PARAM_KEPT else "+" if ch == " " else _escape(ch) for ch in text
    )


def _value(v: Any) -> str:
    # yarl's rule: str, int or float (not bool); a float must be finite.
    if isinstance(v, str):
        return v
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise TypeError(
            f"Invalid variable type: value should be str, int or float, got {v!r} of type {type(v)}"
        )
    if isinstance(v, float):
        if math.isinf(v) or math.isnan(v):
            raise ValueError(f"float({str(v)!r}) is not supported")
        return str(float(v))
    return str(int(v))


def _pairs(params: Any) -> Iterable[Tuple[str, str]]:
    # A mapping's value may be a list or tuple of values (the name repeated); a pair's not.
    mapping = isinstance(params, Mapping)
    items = params.items() if mapping else params
    for key, v in items:
        if not isinstance(key, str):
            raise TypeError("Argument should be str")
        if mapping and isinstance(v, (list, tuple)):
            for one in v:
                yield key, _value(one)
        else:
            yield key, _value(v)


def _without_dots(path: str) -> str:
    # RFC 3986's dot segments resolved, as yarl (and the runner's URL parser) do.
    if "." not in path:
        return path
    segments = path.split("/")
    out: List[str] = []
    for i, seg in enumerate(segments):
        last = i == len(segments) - 1
        if seg == ".":
            if last:
                out.append("")
        elif seg == "..":
            if len(out) > 1:
                out.pop()
            if last:
                out.append("")
        else:
            out.append(seg)
    return "/".join(out)


def build(url: str, params: Any = None) -> str:
    """``url`` with ``params`` (a mapping, pairs or a query string) appended, as aiohttp
    sends it."""
    parts = urlsplit(url)
    path = _without_dots(_requote(parts.path, _PATH_PLAIN, _PATH_KEPT, "%20"))
    query = _requote(parts.query, _QUERY_PLAIN, _QUERY_KEPT, "+")
    if params:
        if isinstance(params, str):
            extra = _requote(params, _QUERY_PLAIN, _QUERY_KEPT, "+")
        else:
            extra = "&".join(f"{_quote_param(k)}={_quote_param(v)}" for k, v in _pairs(params))
        if query and extra and not query.endswith("&"):
            query += "&"
        query += extra
    return urlunsplit((parts.scheme, parts.netloc, path, query, ""))
