"""Writes the jobs of a tglib service's ``jobs.py`` into its component, as the custom
section ``tgrun:jobs`` (a JSON array of names) that ``tgrun check`` reads to tell a
configured job the component has no function for.

    python3 jobs_section.py SERVICE_DIR/jobs.py COMPONENT.wasm

The jobs are what the component's export takes (``tgrun._export.export_jobs``): the
functions ``jobs.py`` defines at its top level whose names do not start with ``_``. Read
from the source (``ast``), so nothing of the service runs here.
"""

import ast
import json
import sys

SECTION = "tgrun:jobs"


def job_names(source: str, filename: str) -> list:
    tree = ast.parse(source, filename)
    return [
        node.name
        for node in tree.body
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_")
    ]


def leb128(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def custom_section(name: str, data: bytes) -> bytes:
    payload = leb128(len(name.encode())) + name.encode() + data
    return b"\x00" + leb128(len(payload)) + payload


def main(jobs_py: str, component: str) -> None:
    with open(jobs_py, encoding="utf-8") as f:
        names = job_names(f.read(), jobs_py)
    with open(component, "rb") as f:
        header = f.read(8)
    if header[:4] != b"\0asm" or header[6:8] != b"\x01\x00":
        raise SystemExit(f"{component}: not a WebAssembly component")
    with open(component, "ab") as f:
        f.write(custom_section(SECTION, json.dumps(names).encode()))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    main(sys.argv[1], sys.argv[2])
