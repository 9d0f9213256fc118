"""The guest's ``asynctest``: the names tglib services' unit tests use, over the standard
library's ``unittest`` (for ``tgrun test``).

asynctest 0.13, the last release, was written for Python 3.5-3.7 and does not import on the
sandbox's CPython (it decorates with ``asyncio.coroutine``, gone since 3.11). Its ideas
went into the standard library: ``IsolatedAsyncioTestCase`` (coroutine test methods, each
test on a loop of its own) and ``unittest.mock`` (``patch`` of an ``async def`` makes an
``AsyncMock``; ``MagicMock`` has ``__aenter__``/``__aexit__``). This module maps one onto
the other:

- ``TestCase``: test methods, ``setUp`` and ``tearDown`` may be ``async def`` (as in
  asynctest); ``self.loop`` is the test's loop, the sandbox's own (see :mod:`tgrun._aio`).
- ``patch``, ``Mock``, ``MagicMock``, ``CoroutineMock`` (an ``AsyncMock``), ``call``,
  ``ANY``, ``sentinel``, ``create_autospec``, ``mock_open``.

Any other name of asynctest is an ``AttributeError`` saying so, rather than a different
behaviour.
"""

import inspect
import unittest
from unittest import mock
from unittest.mock import (  # noqa: F401  (the names asynctest's users import)
    ANY,
    DEFAULT,
    MagicMock,
    Mock,
    NonCallableMagicMock,
    NonCallableMock,
    PropertyMock,
    call,
    create_autospec,
    mock_open,
    patch,
    sentinel,
)

CoroutineMock = mock.AsyncMock

# What a test suite imports from asynctest besides the test case and the mocks.
skip, skipIf, skipUnless, expectedFailure = (
    unittest.skip,
    unittest.skipIf,
    unittest.skipUnless,
    unittest.expectedFailure,
)


class TestCase(unittest.IsolatedAsyncioTestCase):
    """asynctest's ``TestCase`` as the standard library's isolated one: see the module."""

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # asynctest awaits a coroutine setUp/tearDown; unittest calls them plainly and
        # has asyncSetUp/asyncTearDown for that.
        for plain, awaited in (("setUp", "asyncSetUp"), ("tearDown", "asyncTearDown")):
            fn = cls.__dict__.get(plain)
            if fn is not None and inspect.iscoroutinefunction(fn):
                setattr(cls, awaited, fn)
                setattr(cls, plain, lambda self: None)

    @property
    def loop(self):
        """The loop this test runs on (asynctest's ``self.loop``)."""
        return self._asyncioRunner.get_loop()


# asynctest's FunctionTestCase and ClockedTestCase have no counterpart here.
__all__ = [
    "TestCase",
    "CoroutineMock",
    "patch",
    "Mock",
    "MagicMock",
    "NonCallableMock",
    "NonCallableMagicMock",
    "PropertyMock",
    "call",
    "ANY",
    "DEFAULT",
    "sentinel",
    "create_autospec",
    "mock_open",
    "skip",
    "skipIf",
    "skipUnless",
    "expectedFailure",
]


def __getattr__(name: str):
    raise AttributeError(
        f"asynctest.{name} is not in tgrun's asynctest (the names of asynctest it gives "
        f"over unittest: {', '.join(__all__)}); use unittest.mock's or unittest's own"
    )
