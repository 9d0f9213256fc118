"""A service's own unit tests, run inside the sandbox by ``tgrun test``: the test
component's one job runs them with ``unittest`` and fails naming the tests that failed.

At build time (componentize-py's snapshot) the suite is loaded, so a test module that does
not import fails the build with its traceback:

- the module the service declares (``setup.py``'s ``test_suite``, as tgnms' services name
  ``tests.base``), else every ``test*.py``, ``*_test.py`` and ``*_tests.py`` module under
  the tests package;
- the tests folder's other files (JSON fixtures and the like), read into the snapshot: a
  component has no files when it runs, so a test's ``open`` of one of them, read only, by a
  path relative to the folder holding ``tests/`` (tgnms' tests read ``tests/metrics.json``)
  or under a test module's ``__file__``, answers its content;
- each test's event loop is the sandbox's (:mod:`tgrun._aio`): ``IsolatedAsyncioTestCase``,
  the guest's ``asynctest.TestCase`` and ``asyncio.run`` all get one.

A run's params may hold ``only``: patterns (``unittest -k``'s: a substring, or with ``*`` a
wildcard) of the test ids to run.
"""

import builtins
import contextlib
import fnmatch
import importlib
import io
import os
import sys
import unittest
from typing import Dict, Iterator, List, Optional

from . import _aio, _export
from ._swap import opening, swapped

# Fixture files read into the snapshot, at most this many bytes in all.
MAX_FILES_BYTES = 32 << 20
_PATTERNS = ("test*.py", "*_test.py", "*_tests.py")

_suite: Optional[unittest.TestSuite] = None
# The folder holding the tests package: the tests' working directory under ptr/unittest.
_root = ""
# Its fixture files by absolute path (as mounted at build time), with their content.
_files: Dict[str, bytes] = {}


def export_tests(app_module: str, package: str, suite: Optional[str]) -> None:
    """Loads the tests of ``package`` (``tests``, or ``<service>.tests``), or the declared
    module ``suite``, and exports the job that runs them. At build time."""
    global _suite, _root
    import asyncio
    import unittest._log  # noqa: F401  (assertLogs imports it at its first call)
    import unittest.mock  # noqa: F401

    loop = _aio.loop_class()
    # Each test's loop, and asyncio.run's, is a sandbox loop (asyncio's own open sockets).
    unittest.IsolatedAsyncioTestCase.loop_factory = loop
    asyncio.new_event_loop = asyncio.events.new_event_loop = loop

    tests_dir = os.path.normpath(list(importlib.import_module(package).__path__)[0])
    _root = os.path.dirname(tests_dir)
    _read_files(tests_dir)
    loader = unittest.TestLoader()
    if suite:
        _suite = loader.loadTestsFromName(suite)
    else:
        _suite = unittest.TestSuite(
            loader.loadTestsFromModule(importlib.import_module(m))
            for m in _modules(package, tests_dir)
        )
    if loader.errors:
        # A module that does not import fails the build, with its traceback (unittest
        # would run it as one failing test).
        raise ImportError("the tests do not load:\n" + "\n".join(loader.errors))
    if _suite.countTestCases() == 0:
        where = f"module {suite}" if suite else f"{tests_dir} (modules {', '.join(_PATTERNS)})"
        raise RuntimeError(f"no tests found in {where}")
    _export.job(tests)
    _export._expose(app_module)


def _modules(package: str, tests_dir: str) -> List[str]:
    names = []
    for folder, dirs, files in os.walk(tests_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith((".", "__pycache__")))
        rel = os.path.relpath(folder, tests_dir)
        prefix = package if rel == "." else f"{package}.{rel.replace(os.sep, '.')}"
        for f in sorted(files):
            if any(fnmatch.fnmatch(f, p) for p in _PATTERNS):
                names.append(f"{prefix}.{f[:-3]}")
    return names


def _read_files(tests_dir: str) -> None:
    total = 0
    for folder, dirs, files in os.walk(tests_dir):
        dirs[:] = [d for d in dirs if not d.startswith((".", "__pycache__"))]
        for f in files:
            if f.endswith((".py", ".pyc")) or f.startswith("."):
                continue
            path = os.path.join(folder, f)
            with open(path, "rb") as fh:
                data = fh.read()
            total += len(data)
            if total > MAX_FILES_BYTES:
                raise RuntimeError(
                    f"the tests' files are over {MAX_FILES_BYTES >> 20} MiB in all "
                    f"(at {path}): they are carried in the test component"
                )
            _files[os.path.normpath(path)] = data


def _fixture(file) -> Optional[bytes]:
    if not isinstance(file, (str, os.PathLike)):
        return None
    path = os.fsdecode(os.fspath(file))
    return _files.get(os.path.normpath(os.path.join(_root, path)))


@contextlib.contextmanager
def _with_files() -> Iterator[None]:
    """``open`` (and ``os.path.exists``/``isfile``) answering the fixture files."""
    open_ = opening(_fixture)
    real_exists, real_isfile = os.path.exists, os.path.isfile
    with swapped(builtins, open=open_), swapped(io, open=open_), swapped(
        os.path,
        exists=lambda p: _fixture(p) is not None or real_exists(p),
        isfile=lambda p: _fixture(p) is not None or real_isfile(p),
    ):
        yield


def _selected(suite: unittest.TestSuite, only: List[str]) -> unittest.TestSuite:
    patterns = [p if "*" in p else f"*{p}*" for p in only]
    picked = unittest.TestSuite()
    for test in _each(suite):
        if any(fnmatch.fnmatchcase(test.id(), p) for p in patterns):
            picked.addTest(test)
    return picked


def _each(suite) -> Iterator[unittest.TestCase]:
    for t in suite:
        if isinstance(t, unittest.TestSuite):
            yield from _each(t)
        else:
            yield t


def tests(only: Optional[List[str]] = None) -> None:
    """Runs the service's tests; fails naming those that failed."""
    suite = _suite if not only else _selected(_suite, only)
    if suite.countTestCases() == 0:
        raise AssertionError(f"no test's id matches {', '.join(only or [])}")
    with _with_files():
        result = unittest.TextTestRunner(stream=sys.stderr, verbosity=2).run(suite)
    if not result.wasSuccessful():
        bad = [t.id() for t, _ in result.failures + result.errors]
        bad += [f"{t.id()} (unexpected success)" for t in result.unexpectedSuccesses]
        shown = ", ".join(bad[:20]) + (f" and {len(bad) - 20} more" if len(bad) > 20 else "")
        raise AssertionError(f"{len(bad)} of {result.testsRun} tests failed: {shown}")
