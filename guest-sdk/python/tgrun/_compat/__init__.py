"""What the sandbox's CPython lacks at import time, given so that real packages import.

A component's CPython is built for WASI: no OpenSSL (``_ssl``), no user database (``pwd``,
``grp``), no user in the environment. Packages that only *import* these at start-up (an
``ssl`` import in ``http.client``, ``urllib.request``, ``asyncio.sslproto`` or a MySQL
driver; ``getpass.getuser()`` for a default database user) would fail before a job runs.
:func:`install` fills each gap once, before the service's modules are imported (the
component's app module imports this first), and only where the real module is missing:

- ``ssl``: every name a package reads at import (exceptions, enums, constants,
  ``SSLContext``, ``create_default_context``); making a TLS connection
  (``wrap_socket``/``wrap_bio``) raises ``ssl.SSLError`` saying why. The sandbox grants no
  sockets anyway: a job reaches the network only through the runner's clients.
- ``pwd`` and ``grp``: one user and one group, ``tgrun`` (uid and gid 1000).
- ``getpass.getuser()``: the environment's ``LOGNAME``/``USER``/``LNAME``/``USERNAME`` as
  before, else ``tgrun`` instead of an ``OSError``.

And what the standard library imports at a first call rather than at import: a component
carries only the modules imported while it was built (componentize-py's snapshot), so
``datetime.strptime``/``time.strptime`` would fail at run time without ``_strptime``
imported here.
"""

import importlib
import sys

_SHIMS = ("ssl", "pwd", "grp")
_installed = False


def install() -> None:
    """Puts each shim in ``sys.modules`` where the real module cannot be imported, and
    patches ``getpass.getuser``. Safe to call again."""
    global _installed
    if _installed:
        return
    _installed = True
    import _strptime  # noqa: F401  (see the module's doc)

    for name in _SHIMS:
        try:
            importlib.import_module(name)
        except ImportError:
            shim = importlib.import_module(f"{__name__}.{name}")
            sys.modules[name] = shim
    import getpass

    from .pwd import USER

    real_getuser = getpass.getuser

    def getuser() -> str:
        try:
            return real_getuser()
        except (OSError, AttributeError):
            return USER

    getuser.__doc__ = real_getuser.__doc__
    getpass.getuser = getuser
