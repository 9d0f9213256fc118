"""What the real aiohttp does with the cases of ``test_aiohttp_parity`` (read as JSON on
stdin), against a local server of its own that records each request as it arrives: run by
that test under a Python with aiohttp installed (``target/bench-venv``), never imported."""

import asyncio
import json
import sys

import aiohttp

# What the local server answers, by path: status, reason, content type, body.
ANSWERS = {
    "/status/404": (404, "Not Found", "text/plain", b"gone"),
    "/status/503": (503, "Service Unavailable", "text/plain", b""),
    "/json-as-text": (200, "OK", "text/plain", b'{"a": 1}'),
    "/json": (200, "OK", "application/json; charset=utf-8", b'{"a": [1, 2]}'),
    "/lines": (200, "OK", "text/plain", b"line1\nline2\nlast"),
}
DEFAULT = (200, "OK", "text/plain", b"")


def mro(cls) -> list:
    return [k.__name__ for k in cls.__mro__]


async def main(cases: dict) -> dict:
    seen = []

    async def handle(reader, writer):
        head = []
        while (line := await reader.readline()) not in (b"\r\n", b""):
            head.append(line.decode("latin-1").rstrip("\r\n"))
        length = next((int(h.split(":", 1)[1]) for h in head if h.lower().startswith("content-length:")), 0)
        body = await reader.readexactly(length) if length else b""
        seen.append({"line": head[0], "headers": head[1:], "body": body.decode("latin-1")})
        path = head[0].split(" ")[1].split("?")[0]
        status, reason, ctype, answer = ANSWERS.get(path, DEFAULT)
        writer.write(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {len(answer)}\r\nConnection: close\r\n\r\n".encode()
            + answer
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    out: dict = {"base": base, "urls": [], "bodies": [], "errors": {}, "content": {}, "mro": {}}
    async with aiohttp.ClientSession() as s:
        for path, params in cases["urls"]:
            seen.clear()
            params = [tuple(p) for p in params] if isinstance(params, list) else params
            try:
                async with s.get(base + path, params=params):
                    pass
                out["urls"].append(seen[0]["line"].split(" ")[1])
            except Exception as e:
                out["urls"].append(f"{type(e).__name__}: {e}")
        for data in cases["bodies"]:
            seen.clear()
            data = [tuple(p) for p in data["pairs"]] if isinstance(data, dict) and "pairs" in data else data
            async with s.post(base + "/", data=data.encode("latin-1") if isinstance(data, str) else data):
                pass
            kept = [h for h in seen[0]["headers"] if h.split(":")[0].lower() in ("content-type", "accept")]
            out["bodies"].append({"headers": kept, "body": seen[0]["body"]})
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
            content["chunks"] = [c.decode() async for c in r.content.iter_chunked(5)]
        async with s.get(base + "/lines") as r:
            c = r.content
            content["reads"] = [
                (await c.read(3)).decode(),
                (await c.readline()).decode(),
                (await c.read()).decode(),
                c.at_eof(),
            ]
    for name in cases["exceptions"]:
        out["mro"][name] = mro(getattr(aiohttp, name))
    server.close()
    return out


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(json.load(sys.stdin)))))
