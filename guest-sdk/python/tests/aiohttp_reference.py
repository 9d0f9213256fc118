"""What the real aiohttp does with the cases of ``test_aiohttp_parity`` (read as JSON on
stdin), against a local server of its own that records each request as it arrives: run by
that test under a Python with aiohttp installed (``target/bench-venv``), never imported."""

import asyncio
import json
import sys

import aiohttp

from aiohttp_cases import ANSWERS, DEFAULT, exercise


async def main(cases: dict) -> dict:
    seen = []

    async def handle(reader, writer):
        head = []
        while (line := await reader.readline()) not in (b"\r\n", b""):
            head.append(line.decode("latin-1").rstrip("\r\n"))
        length = next((int(h.split(":", 1)[1]) for h in head if h.lower().startswith("content-length:")), 0)
        body = await reader.readexactly(length) if length else b""
        seen.append((head[0].split(" ")[1], head[1:], body))
        status, reason, ctype, answer = ANSWERS.get(seen[-1][0].split("?")[0], DEFAULT)
        writer.write(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {len(answer)}\r\nConnection: close\r\n\r\n".encode()
            + answer
        )
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    base = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    out = await exercise(aiohttp, base, cases, lambda: seen[-1])
    server.close()
    return {"base": base, **out}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(json.load(sys.stdin)))))
