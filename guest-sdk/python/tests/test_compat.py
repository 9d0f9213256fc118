"""The compatibility layer (tgrun._compat) on the machine's Python, where the real modules
exist: the shims themselves, and install() with the real module made unimportable, as in
the sandbox's CPython."""

import importlib
import sys
import unittest
from unittest import mock

from tgrun import _compat
from tgrun._compat import grp as grp_shim
from tgrun._compat import pwd as pwd_shim
from tgrun._compat import ssl as ssl_shim


class Ssl(unittest.TestCase):
    def test_a_context_is_made_and_set_up_as_packages_do_at_import(self):
        ctx = ssl_shim.create_default_context()
        self.assertEqual((ctx.verify_mode, ctx.check_hostname), (ssl_shim.CERT_REQUIRED, True))
        ctx.options |= ssl_shim.OP_NO_TLSv1 | ssl_shim.OP_NO_TLSv1_1
        ctx.minimum_version = ssl_shim.TLSVersion.TLSv1_2
        ctx.load_verify_locations(cafile="/nowhere")
        ctx.set_alpn_protocols(["http/1.1"])
        plain = ssl_shim._create_unverified_context()
        self.assertEqual((plain.verify_mode, plain.check_hostname), (ssl_shim.CERT_NONE, False))
        self.assertEqual(ssl_shim.Purpose.SERVER_AUTH.oid, "1.3.6.1.5.5.7.3.1")
        self.assertTrue(issubclass(ssl_shim.SSLCertVerificationError, ValueError))
        self.assertIs(ssl_shim.CertificateError, ssl_shim.SSLCertVerificationError)

    def test_a_tls_connection_is_refused_saying_why(self):
        ctx = ssl_shim.create_default_context()
        for attempt in (
            lambda: ctx.wrap_socket(None, server_hostname="x"),
            lambda: ctx.wrap_bio(ssl_shim.MemoryBIO(), ssl_shim.MemoryBIO()),
            lambda: ssl_shim.get_server_certificate(("example.org", 443)),
        ):
            with self.assertRaises(ssl_shim.SSLError) as e:
                attempt()
            self.assertIn("TLS is not available in the tgrun sandbox", str(e.exception))
            self.assertIsInstance(e.exception, OSError)

    def test_pem_round_trip(self):
        pem = ssl_shim.DER_cert_to_PEM_cert(b"\x30\x03\x02\x01\x01")
        self.assertEqual(ssl_shim.PEM_cert_to_DER_cert(pem), b"\x30\x03\x02\x01\x01")


class Users(unittest.TestCase):
    def test_one_user_and_group(self):
        me = pwd_shim.getpwuid(1000)
        self.assertEqual((me.pw_name, me.pw_uid, me[0]), ("tgrun", 1000, "tgrun"))
        self.assertEqual(pwd_shim.getpwnam("tgrun"), me)
        with self.assertRaises(KeyError):
            pwd_shim.getpwnam("root")
        self.assertEqual(grp_shim.getgrgid(1000).gr_name, "tgrun")
        with self.assertRaises(KeyError):
            grp_shim.getgrnam("wheel")


class Install(unittest.TestCase):
    def test_shims_go_in_only_where_the_real_module_is_missing(self):
        missing = {"ssl", "pwd", "grp"}

        def import_module(name):
            # As in the sandbox: the real module's C part is not there.
            if name in missing:
                raise ModuleNotFoundError(f"No module named '_{name}'")
            return real_import_module(name)

        saved = {n: sys.modules.pop(n, None) for n in missing}
        import getpass

        real_getuser = getpass.getuser
        try:
            with mock.patch.object(importlib, "import_module", side_effect=import_module):
                _compat._installed = False
                _compat.install()
            self.assertIs(sys.modules["ssl"], ssl_shim)
            self.assertIs(sys.modules["pwd"], pwd_shim)
            self.assertIs(sys.modules["grp"], grp_shim)
            # No user in the environment, no user database: tgrun's user, not an OSError.
            with mock.patch.dict("os.environ", {}, clear=True), mock.patch.object(
                sys.modules["os"], "getuid", create=True, side_effect=AttributeError
            ):
                self.assertEqual(getpass.getuser(), "tgrun")
            with mock.patch.dict("os.environ", {"USER": "alice"}, clear=True):
                self.assertEqual(getpass.getuser(), "alice")
        finally:
            getpass.getuser = real_getuser
            for n, m in saved.items():
                if m is None:
                    sys.modules.pop(n, None)
                else:
                    sys.modules[n] = m
            _compat._installed = True

    def test_where_the_real_module_imports_it_stays(self):
        import ssl

        _compat._installed = False
        _compat.install()
        self.assertIs(sys.modules["ssl"], ssl)
        self.assertTrue(hasattr(ssl, "OPENSSL_VERSION") and "tgrun" not in ssl.OPENSSL_VERSION)


real_import_module = importlib.import_module

if __name__ == "__main__":
    unittest.main()
