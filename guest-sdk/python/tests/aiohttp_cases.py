"""The cases ``test_aiohttp_parity`` runs through two aiohttp clients, the real one and the
guest's, each over its own transport: what each sends and raises is written to one dict
for the two to be compared. Imported by both sides (``aiohttp_reference.py`` under the
real aiohttp), so the two run the very same steps."""

# What the server (or the fake runner) answers, by path: status, reason, content type, body.
ANSWERS = {
    "/status/404": (404, "Not Found", "text/plain", b"gone"),
    "/status/503": (503, "Service Unavailable", "text/plain", b""),
    "/json-as-text": (200, "OK", "text/plain", b'{"a": 1}'),
    "/json": (200, "OK", "application/json; charset=utf-8", b'{"a": [1, 2]}'),
    "/lines": (200, "OK", "text/plain", b"line1\nline2\nlast"),
}
DEFAULT = (200, "OK", "text/plain", b"")


async def exercise(aiohttp, base: str, cases: dict, sent) -> dict:
    """Runs ``cases`` with ``aiohttp`` against ``base``; ``sent()`` answers the last
    request as it left: its request target, its ``Name: value`` headers, its body."""
    out: dict = {"urls": [], "bodies": [], "errors": {}, "content": {}, "mro": {}}
    async with aiohttp.ClientSession() as s:
        for path, params in cases["urls"]:
            params = [tuple(p) for p in params] if isinstance(params, list) else params
            try:
                async with s.get(base + path, params=params):
                    pass
                out["urls"].append(sent()[0])
            except Exception as e:
                out["urls"].append(f"{type(e).__name__}: {e}")
        for data in cases["bodies"]:
            data = [tuple(p) for p in data["pairs"]] if isinstance(data, dict) and "pairs" in data else data
            async with s.post(base + "/", data=data.encode("latin-1") if isinstance(data, str) else data):
                pass
            _, headers, body = sent()
            kept = [h for h in headers if h.split(":")[0].lower() in ("content-type", "accept")]
            out["bodies"].append({"headers": kept, "body": body.decode("latin-1")})
        errors = out["errors"]
        for path in ("/status/404", "/status/503"):
            async with s.get(base + path) as r:
                try:
                    r.raise_for_status()
                except aiohttp.ClientResponseError as e:
                    errors[path] = [str(e), repr(e.status), e.message]
        async with s.get(base + "/json-as-text") as r:
            try:
                await r.json()
            except aiohttp.ContentTypeError as e:
                errors["json-as-text"] = [type(e).__name__, str(e)]
            errors["json-as-text-anyway"] = await r.json(content_type=None)
        async with s.get(base + "/json") as r:
            errors["json"] = [await r.json(), await r.text(), r.content_type, r.charset, r.ok]
        try:
            await s.get("ftp://127.0.0.1/x")
        except aiohttp.ClientError as e:
            errors["ftp"] = [type(e).__name__, str(e)]
        try:
            await s.get("http://127.0.0.1:9/closed")
        except aiohttp.ClientConnectorError as e:
            errors["closed"] = [type(e).__name__, str(e).split(" [")[0], e.host, e.port]
        content = out["content"]
        async with s.get(base + "/lines") as r:
            content["lines"] = [line.decode() async for line in r.content]
        async with s.get(base + "/lines") as r:
            content["chunks"] = [part.decode() async for part in r.content.iter_chunked(5)]
        async with s.get(base + "/lines") as r:
            stream = r.content
            content["reads"] = [
                (await stream.read(3)).decode(),
                (await stream.readline()).decode(),
                (await stream.read()).decode(),
                stream.at_eof(),
            ]
    for name in cases["exceptions"]:
        out["mro"][name] = [k.__name__ for k in getattr(aiohttp, name).__mro__]
    return out
