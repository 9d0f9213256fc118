"""What ``tgrun test`` runs a service's tests with, on the machine's Python: the guest's
asynctest over unittest, the fixture files answered by ``open``, the ``-k`` selection."""

import asyncio
import logging
import os
import unittest
from unittest import mock

import asynctest

from tgrun import _tests


def setUpModule():
    # A test case's loop runs in debug mode and logs its selector; tgrun's log handler has
    # no runner to write to here.
    logging.getLogger("asyncio").setLevel(logging.WARNING)


def tearDownModule():
    logging.getLogger("asyncio").setLevel(logging.NOTSET)


class Asynctest(unittest.TestCase):
    def test_a_coroutine_set_up_and_tear_down_are_awaited_around_the_test(self):
        events = []

        class Case(asynctest.TestCase):
            async def setUp(self):
                await asyncio.sleep(0)
                events.append("setUp")

            async def tearDown(self):
                events.append("tearDown")

            async def test_it(self):
                events.append(self.loop is asyncio.get_running_loop())

        result = unittest.TestResult()
        Case("test_it").run(result)
        self.assertTrue(result.wasSuccessful(), result.errors + result.failures)
        self.assertEqual(events, ["setUp", True, "tearDown"])

    def test_a_plain_set_up_stays_plain(self):
        class Case(asynctest.TestCase):
            def setUp(self):
                self.ready = True

            async def test_it(self):
                self.assertTrue(self.ready)

        result = unittest.TestResult()
        Case("test_it").run(result)
        self.assertTrue(result.wasSuccessful(), result.errors + result.failures)

    def test_patch_and_coroutine_mock_are_unittest_s(self):
        self.assertIs(asynctest.CoroutineMock, mock.AsyncMock)
        self.assertIs(asynctest.patch, mock.patch)

        async def answer():
            return await asynctest.CoroutineMock(return_value=7)()

        self.assertEqual(asyncio.run(answer()), 7)

    def test_a_name_it_lacks_says_so(self):
        with self.assertRaisesRegex(
            AttributeError, r"asynctest.ClockedTestCase is not in tgrun's asynctest"
        ):
            asynctest.ClockedTestCase


class Files(unittest.TestCase):
    def setUp(self):
        self.saved = (_tests._root, dict(_tests._files))
        _tests._root = "/svc"
        _tests._files.clear()
        _tests._files["/svc/tests/metrics.json"] = b'{"tx_ok": 1}'

    def tearDown(self):
        _tests._root, files = self.saved
        _tests._files.clear()
        _tests._files.update(files)

    def test_a_fixture_is_read_by_a_relative_or_its_absolute_path(self):
        with _tests._with_files():
            with open("tests/metrics.json") as f:
                self.assertEqual(f.read(), '{"tx_ok": 1}')
            with open("./tests/../tests/metrics.json", "rb") as f:
                self.assertEqual(f.read(), b'{"tx_ok": 1}')
            with open("/svc/tests/metrics.json", encoding="utf-8") as f:
                self.assertEqual(f.read(), '{"tx_ok": 1}')
            self.assertTrue(os.path.exists("tests/metrics.json"))
            self.assertTrue(os.path.isfile("/svc/tests/metrics.json"))
            self.assertFalse(os.path.exists("tests/other.json"))
            with self.assertRaises(FileNotFoundError):
                open("tests/other.json")
        # Outside a test run, open is the real one again.
        self.assertFalse(os.path.exists("tests/metrics.json"))


class Loading(unittest.TestCase):
    def test_a_test_module_that_does_not_import_fails_the_build_with_its_error(self):
        import sys
        import tempfile
        import types

        with tempfile.TemporaryDirectory() as root:
            package = os.path.join(root, "broken_suite_tests")
            os.mkdir(package)
            with open(os.path.join(package, "__init__.py"), "w") as f:
                f.write("")
            with open(os.path.join(package, "base.py"), "w") as f:
                f.write("from .missing_tests import Nope\n")
            sys.path.insert(0, root)
            saved = (_tests._suite, _tests._root, dict(_tests._files))
            sys.modules["broken_app"] = types.ModuleType("broken_app")
            try:
                # What export_tests sets for the sandbox, put back after.
                with mock.patch.object(_tests._export, "job"), mock.patch.object(
                    _tests._export, "_expose"
                ), mock.patch.object(asyncio, "new_event_loop"), mock.patch.object(
                    asyncio.events, "new_event_loop"
                ), mock.patch.object(
                    unittest.IsolatedAsyncioTestCase, "loop_factory", None, create=True
                ):
                    with self.assertRaisesRegex(ImportError, "the tests do not load") as e:
                        _tests.export_tests(
                            "broken_app", "broken_suite_tests", "broken_suite_tests.base"
                        )
                self.assertIn("missing_tests", str(e.exception))
            finally:
                sys.path.remove(root)
                sys.modules.pop("broken_app", None)
                for name in [m for m in sys.modules if m.startswith("broken_suite_tests")]:
                    del sys.modules[name]
                _tests._suite, _tests._root = saved[0], saved[1]
                _tests._files.clear()
                _tests._files.update(saved[2])


class Selection(unittest.TestCase):
    def test_k_patterns_pick_by_substring_or_wildcard(self):
        class A(unittest.TestCase):
            def test_one(self):
                pass

            def test_two(self):
                pass

        suite = unittest.TestSuite([unittest.TestSuite([A("test_one"), A("test_two")])])
        ids = lambda s: sorted(t.id().rsplit(".", 1)[1] for t in _tests._each(s))  # noqa: E731
        self.assertEqual(ids(_tests._selected(suite, ["two"])), ["test_two"])
        self.assertEqual(ids(_tests._selected(suite, ["*A.test_o*"])), ["test_one"])
        self.assertEqual(ids(_tests._selected(suite, ["nothing"])), [])


if __name__ == "__main__":
    unittest.main()
