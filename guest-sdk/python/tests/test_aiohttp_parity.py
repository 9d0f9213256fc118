"""The guest's aiohttp client against the real aiohttp, case by case: the request line a
URL and its ``params`` become, form and byte bodies with their content types, the words of
the exceptions a service catches and logs, their class hierarchy, and reading
``resp.content``. The real aiohttp runs in a Python of its own (``AIOHTTP_REFERENCE_PYTHON``,
``make py-test`` sets it) against a local server; the guest's, here, against a fake runner
that answers as that server does."""

import json
import os
import random
import subprocess
import unittest

import aiohttp
from componentize_py_types import Err
from wit_world.imports import http as host
from wit_world.imports import types

from tests.aiohttp_cases import ANSWERS, DEFAULT, exercise
from tgrun import _aio

EXCEPTIONS = [
    "ClientError",
    "ClientConnectionError",
    "ClientOSError",
    "ClientConnectorError",
    "ClientConnectorDNSError",
    "ServerConnectionError",
    "ServerDisconnectedError",
    "ServerTimeoutError",
    "ConnectionTimeoutError",
    "ClientPayloadError",
    "ClientResponseError",
    "ContentTypeError",
    "InvalidURL",
    "InvalidUrlClientError",
    "NonHttpUrlClientError",
]

# Characters a URL or a parameter is made of: every printable one but `#` (a fragment never
# reaches a server), some beyond ASCII, escapes of plain and special characters, stray `%`.
PIECES = [chr(c) for c in range(32, 127) if chr(c) != "#"] + ["é", "€", "%41", "%2F", "%2e", "%zz", "%e9", "%20"]


def cases() -> dict:
    rnd = random.Random(40)
    word = lambda n: "".join(rnd.choice(PIECES) for _ in range(rnd.randint(0, n)))
    value = lambda: rnd.choice([word(6), 7, -2.5, 10**20, True, None, float("inf"), [1, "a b"], ("x",)])
    urls = [
        ["/x", {"network_name": "net 1", "n": 3}],
        ["/a b/./c/../d", None],
        ["/q?k=1", {"p": "a/b:c,d@e+f&g=h;i"}],
        ["/q?k=1&", {"p": 1}],
        ["/q", [["k", 1], ["k", 2.5]]],
        ["/q", "raw=a b&x"],
        ["/q", {"flag": True}],
        ["/q", {"missing": None}],
        ["/q", {"big": float("nan")}],
        ["/q", {"k": []}],
    ]
    for _ in range(300):
        path = "/" + word(8).replace("?", "")
        query = word(6).replace("?", "")
        params = rnd.choice([{word(3): value()}, {word(3): value(), word(3): value()}, None, {}])
        urls.append([path + ("?" + query if query else ""), params])
    bodies = [
        "plain bytes é",
        {"pairs": [["a", "1"], ["a", "2 3"]]},
        {"b": "x y&z", "n": [1, 2]},
    ]
    return {"urls": urls, "bodies": bodies, "exceptions": EXCEPTIONS}


def _jsonable(c: dict) -> str:
    # `inf`/`nan` travel as JSON's extension Python reads back.
    return json.dumps(c)


def reference(c: dict) -> dict:
    python = os.environ.get("AIOHTTP_REFERENCE_PYTHON")
    if not python:
        raise AssertionError("AIOHTTP_REFERENCE_PYTHON is not set: run `make py-test`")
    here = os.path.dirname(os.path.abspath(__file__))
    done = subprocess.run(
        [python, os.path.join(here, "aiohttp_reference.py")],
        input=_jsonable(c).encode(),
        capture_output=True,
        timeout=120,
        cwd=here,
        env={"PATH": os.environ.get("PATH", "")},
    )
    if done.returncode != 0:
        raise AssertionError(done.stderr.decode())
    return json.loads(done.stdout)


def guest(c: dict, base: str) -> dict:
    """The same cases through the guest's aiohttp, its requests answered by a fake runner."""
    sent = []

    def fake_send(req):
        sent.append(req)
        if ":9/" in req.url:
            raise Err(types.Error_Upstream("http://127.0.0.1:9: error sending request: client error (Connect): tcp connect error: Connection refused (os error 111)"))
        path = req.url[len(base) :].split("?")[0]
        status, reason, ctype, answer = ANSWERS.get(path, DEFAULT)
        return host.OutboundResponse(status, reason, [("Content-Type", ctype)], answer, req.url)

    def last():
        req = sent[-1]
        return req.url[len(base) :], [f"{k}: {v}" for k, v in req.headers], req.body

    old, host.send = host.send, fake_send
    try:
        return _aio.run(exercise(aiohttp, base, c, last))
    finally:
        host.send = old


class Parity(unittest.TestCase):
    def test_the_guest_client_says_and_sends_what_aiohttp_does(self):
        c = cases()
        real = reference(c)
        ours = guest(c, real["base"])
        for (path, params), want, got in zip(c["urls"], real["urls"], ours["urls"]):
            self.assertEqual(got, want, f"GET {path!r} params={params!r}")
        self.assertEqual(len(ours["urls"]), len(real["urls"]))
        for key in ("bodies", "errors", "content", "mro"):
            self.assertEqual(ours[key], real[key], key)


if __name__ == "__main__":
    unittest.main()
