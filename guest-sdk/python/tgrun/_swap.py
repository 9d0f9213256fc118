"""Attributes swapped for the length of a block, and an ``open`` that answers some files
from memory: how the SDK gives a service's own code what the sandbox lacks (its
``service_config.json``, its tests' fixture files, a clock, a sleep) without changing it."""

import builtins
import contextlib
import io
from typing import Callable, Iterator, Optional


@contextlib.contextmanager
def swapped(target, **values) -> Iterator[None]:
    """Sets ``target``'s attributes to ``values``, and back to what they were after."""
    saved = {name: getattr(target, name) for name in values}
    for name, value in values.items():
        setattr(target, name, value)
    try:
        yield
    finally:
        for name, value in saved.items():
            setattr(target, name, value)


def opening(contents: Callable[[object], Optional[bytes]]) -> Callable:
    """An ``open`` that reads ``contents(file)`` when it has the file (read modes only:
    these files are read only), else the real one's."""
    real_open = builtins.open

    def open_(file, mode="r", buffering=-1, encoding=None, errors=None, newline=None, *a, **kw):
        data = None if any(c in mode for c in "wax+") else contents(file)
        if data is None:
            return real_open(file, mode, buffering, encoding, errors, newline, *a, **kw)
        raw = io.BytesIO(data)
        if "b" in mode:
            return raw
        return io.TextIOWrapper(raw, encoding=encoding or "utf-8", errors=errors, newline=newline)

    return open_
