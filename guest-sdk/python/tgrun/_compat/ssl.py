"""``ssl`` for the sandbox, whose CPython has no OpenSSL: the names packages read when they
are imported (``http.client``, ``urllib.request``, ``asyncio``, MySQL drivers, HTTP
clients), and a refusal, ``SSLError``, where a TLS connection would be made.

A context can be made and configured (a package may build one at start-up); wrapping a
socket or a memory BIO in it raises. The sandbox grants no sockets either: a job reaches
Prometheus, the API service and its database through the runner, which speaks TLS for it.
"""

import enum
import os
import socket as _socket

_REFUSED = (
    "TLS is not available in the tgrun sandbox (its CPython has no OpenSSL, and a job has "
    "no sockets): reach services through the runner's clients"
)

OPENSSL_VERSION = "none (tgrun sandbox)"
OPENSSL_VERSION_INFO = (0, 0, 0, 0, 0)
OPENSSL_VERSION_NUMBER = 0
_OPENSSL_API_VERSION = OPENSSL_VERSION_INFO

HAS_SNI = True
HAS_ALPN = True
HAS_ECDH = True
HAS_NPN = False
HAS_NEVER_CHECK_COMMON_NAME = True
HAS_SSLv2 = HAS_SSLv3 = HAS_TLSv1 = HAS_TLSv1_1 = False
HAS_TLSv1_2 = HAS_TLSv1_3 = True
HAS_PSK = False
HAS_PHA = True
CHANNEL_BINDING_TYPES = ["tls-unique"]
_DEFAULT_CIPHERS = "DEFAULT"


class SSLError(OSError):
    """A TLS failure; in the sandbox, any attempt at a TLS connection."""

    library = None
    reason = None


class SSLZeroReturnError(SSLError):
    pass


class SSLWantReadError(SSLError):
    pass


class SSLWantWriteError(SSLError):
    pass


class SSLSyscallError(SSLError):
    pass


class SSLEOFError(SSLError):
    pass


class SSLCertVerificationError(SSLError, ValueError):
    verify_code = None
    verify_message = None


CertificateError = SSLCertVerificationError
socket_error = OSError


class _SSLMethod(enum.IntEnum):
    PROTOCOL_SSLv23 = 2
    PROTOCOL_TLS_CLIENT = 16
    PROTOCOL_TLS_SERVER = 17


PROTOCOL_TLS = PROTOCOL_SSLv23 = _SSLMethod.PROTOCOL_SSLv23
PROTOCOL_TLS_CLIENT = _SSLMethod.PROTOCOL_TLS_CLIENT
PROTOCOL_TLS_SERVER = _SSLMethod.PROTOCOL_TLS_SERVER


class VerifyMode(enum.IntEnum):
    CERT_NONE = 0
    CERT_OPTIONAL = 1
    CERT_REQUIRED = 2


CERT_NONE, CERT_OPTIONAL, CERT_REQUIRED = VerifyMode


class VerifyFlags(enum.IntFlag):
    VERIFY_DEFAULT = 0
    VERIFY_CRL_CHECK_LEAF = 0x4
    VERIFY_CRL_CHECK_CHAIN = 0xC
    VERIFY_X509_STRICT = 0x20
    VERIFY_ALLOW_PROXY_CERTS = 0x40
    VERIFY_X509_TRUSTED_FIRST = 0x8000
    VERIFY_X509_PARTIAL_CHAIN = 0x80000


globals().update(VerifyFlags.__members__)


class Options(enum.IntFlag):
    OP_ALL = 0x80000050
    OP_NO_SSLv2 = 0
    OP_NO_SSLv3 = 0x2000000
    OP_NO_TLSv1 = 0x4000000
    OP_NO_TLSv1_1 = 0x10000000
    OP_NO_TLSv1_2 = 0x8000000
    OP_NO_TLSv1_3 = 0x20000000
    OP_NO_COMPRESSION = 0x20000
    OP_NO_TICKET = 0x4000
    OP_NO_RENEGOTIATION = 0x40000000
    OP_CIPHER_SERVER_PREFERENCE = 0x400000
    OP_SINGLE_DH_USE = 0
    OP_SINGLE_ECDH_USE = 0
    OP_ENABLE_MIDDLEBOX_COMPAT = 0x100000
    OP_IGNORE_UNEXPECTED_EOF = 0x80
    OP_LEGACY_SERVER_CONNECT = 0x4


globals().update(Options.__members__)


class TLSVersion(enum.IntEnum):
    MINIMUM_SUPPORTED = -2
    MAXIMUM_SUPPORTED = -1
    SSLv3 = 0x300
    TLSv1 = 0x301
    TLSv1_1 = 0x302
    TLSv1_2 = 0x303
    TLSv1_3 = 0x304


class AlertDescription(enum.IntEnum):
    ALERT_DESCRIPTION_CLOSE_NOTIFY = 0
    ALERT_DESCRIPTION_HANDSHAKE_FAILURE = 40
    ALERT_DESCRIPTION_INTERNAL_ERROR = 80


globals().update(AlertDescription.__members__)


class SSLErrorNumber(enum.IntEnum):
    SSL_ERROR_ZERO_RETURN = 6
    SSL_ERROR_WANT_READ = 2
    SSL_ERROR_WANT_WRITE = 3
    SSL_ERROR_SYSCALL = 5
    SSL_ERROR_SSL = 1
    SSL_ERROR_EOF = 8


globals().update(SSLErrorNumber.__members__)


class _ASN1Object(tuple):
    """``(nid, shortname, longname, oid)``, as ssl's."""

    def __new__(cls, *fields):
        return super().__new__(cls, fields)

    nid = property(lambda self: self[0])
    shortname = property(lambda self: self[1])
    longname = property(lambda self: self[2])
    oid = property(lambda self: self[3])


class Purpose(_ASN1Object, enum.Enum):
    SERVER_AUTH = (129, "serverAuth", "TLS Web Server Authentication", "1.3.6.1.5.5.7.3.1")
    CLIENT_AUTH = (130, "clientAuth", "TLS Web Client Authentication", "1.3.6.1.5.5.7.3.2")


class DefaultVerifyPaths(tuple):
    pass


def get_default_verify_paths():
    return ("", "", "", "", "", "")


class MemoryBIO:
    """A byte buffer (what asyncio feeds a TLS object); usable, as nothing reads it here."""

    def __init__(self):
        self._buf = bytearray()
        self.eof = False

    @property
    def pending(self) -> int:
        return len(self._buf)

    def write(self, data) -> int:
        self._buf += data
        return len(data)

    def write_eof(self) -> None:
        self.eof = True

    def read(self, n: int = -1) -> bytes:
        n = len(self._buf) if n < 0 else min(n, len(self._buf))
        out = bytes(self._buf[:n])
        del self._buf[:n]
        return out


class SSLSession:
    pass


class SSLObject:
    """Never made: ``SSLContext.wrap_bio`` refuses."""

    def __init__(self, *args, **kwargs):
        raise TypeError(f"{self.__class__.__name__} does not have a public constructor.")


class SSLSocket(_socket.socket):
    """Never made: ``SSLContext.wrap_socket`` refuses."""

    def __init__(self, *args, **kwargs):
        raise TypeError(f"{self.__class__.__name__} does not have a public constructor.")


class SSLContext:
    """A TLS configuration that can be made and set up but never used to connect."""

    sslsocket_class = SSLSocket
    sslobject_class = SSLObject

    def __init__(self, protocol=None, *args, **kwargs):
        self.protocol = _SSLMethod(PROTOCOL_TLS if protocol is None else protocol)
        client = self.protocol == PROTOCOL_TLS_CLIENT
        self.verify_mode = CERT_REQUIRED if client else CERT_NONE
        self.check_hostname = client
        self.options = Options.OP_ALL | Options.OP_NO_SSLv3
        self.verify_flags = VerifyFlags.VERIFY_X509_TRUSTED_FIRST
        self.minimum_version = TLSVersion.MINIMUM_SUPPORTED
        self.maximum_version = TLSVersion.MAXIMUM_SUPPORTED
        self.post_handshake_auth = None
        self.hostname_checks_common_name = False
        self.keylog_filename = None
        self.security_level = 2
        self.sni_callback = None

    def load_default_certs(self, purpose=Purpose.SERVER_AUTH) -> None:
        pass

    def load_verify_locations(self, cafile=None, capath=None, cadata=None) -> None:
        pass

    def load_cert_chain(self, certfile, keyfile=None, password=None) -> None:
        pass

    def set_default_verify_paths(self) -> None:
        pass

    def set_ciphers(self, ciphers: str) -> None:
        pass

    def set_alpn_protocols(self, protocols) -> None:
        pass

    def set_npn_protocols(self, protocols) -> None:
        pass

    def set_ecdh_curve(self, name) -> None:
        pass

    def load_dh_params(self, path) -> None:
        pass

    def set_servername_callback(self, callback) -> None:
        self.sni_callback = callback

    def get_ciphers(self):
        return []

    def get_ca_certs(self, binary_form=False):
        return []

    def cert_store_stats(self):
        return {"x509": 0, "crl": 0, "x509_ca": 0}

    def session_stats(self):
        return {}

    def wrap_socket(self, sock, *args, **kwargs):
        raise SSLError(_REFUSED)

    def wrap_bio(self, incoming, outgoing, *args, **kwargs):
        raise SSLError(_REFUSED)


def create_default_context(purpose=Purpose.SERVER_AUTH, *, cafile=None, capath=None, cadata=None):
    return SSLContext(PROTOCOL_TLS_CLIENT if purpose == Purpose.SERVER_AUTH else PROTOCOL_TLS_SERVER)


def _create_unverified_context(protocol=None, *, cert_reqs=CERT_NONE, check_hostname=False,
                               purpose=Purpose.SERVER_AUTH, certfile=None, keyfile=None,
                               cafile=None, capath=None, cadata=None):
    context = SSLContext(PROTOCOL_TLS_CLIENT if protocol is None else protocol)
    context.check_hostname = check_hostname
    context.verify_mode = cert_reqs
    return context


_create_default_https_context = create_default_context
_create_stdlib_context = _create_unverified_context


def RAND_bytes(n: int) -> bytes:
    return os.urandom(n)


def RAND_status() -> bool:
    return True


def RAND_add(string, entropy) -> None:
    pass


def DER_cert_to_PEM_cert(der_cert_bytes: bytes) -> str:
    import base64
    import textwrap

    body = base64.standard_b64encode(der_cert_bytes).decode("ascii")
    return "-----BEGIN CERTIFICATE-----\n" + textwrap.fill(body, 64) + "\n-----END CERTIFICATE-----\n"


def PEM_cert_to_DER_cert(pem_cert_string: str) -> bytes:
    import base64

    body = pem_cert_string.strip()
    head, foot = "-----BEGIN CERTIFICATE-----", "-----END CERTIFICATE-----"
    if not body.startswith(head) or not body.endswith(foot):
        raise ValueError(f"Invalid PEM encoding; must start with {head} and end with {foot}")
    return base64.decodebytes(body[len(head):-len(foot)].encode("ascii"))


def get_server_certificate(addr, ssl_version=PROTOCOL_TLS_CLIENT, ca_certs=None, timeout=None):
    raise SSLError(_REFUSED)


def cert_time_to_seconds(cert_time: str) -> int:
    import calendar
    import time

    return calendar.timegm(time.strptime(cert_time, "%b %d %H:%M:%S %Y GMT"))
