"""tglib's exceptions, with tglib's names, bases and default messages. A client call that
fails raises one of them, caused by the tgrun SDK's error (whose kind the runner reports)."""

from typing import Optional

import tgrun


class TGLibError(Exception):
    """The base of every tglib error."""


class ConfigError(TGLibError):
    """The configuration cannot be read or used."""


class DuplicateRouteError(TGLibError):
    """Two routes have the same method and path."""

    def __init__(self, method: str, path: str, msg: Optional[str] = None):
        super().__init__(msg or f"A route with method, {method}, and path, {path}, already exists")
        self.method = method
        self.path = path


class ClientError(TGLibError):
    """The base of every client error."""


class ClientRestartError(ClientError):
    """A client was started while running (in the sandbox, the runner starts them)."""

    def __init__(self, msg: Optional[str] = None):
        super().__init__(msg or "Cannot start client more than once")


class ClientStoppedError(ClientError):
    """A client was used while not running (in the sandbox: not configured in the runner)."""

    def __init__(self, msg: Optional[str] = None):
        super().__init__(msg or "Client is not currently running")


class ClientRuntimeError(ClientError):
    """A client call failed: the remote side failed or timed out, or a runner limit."""

    def __init__(self, msg: Optional[str] = None):
        super().__init__(msg or "An unknown issue with the client occurred at runtime")


def from_sdk(e: "tgrun.Error") -> ClientError:
    """The tglib exception for a tgrun SDK error, caused by it (so the runner still reports
    its kind): a client the runner does not have is ``ClientStoppedError``, anything else
    ``ClientRuntimeError``."""
    err = ClientStoppedError(str(e)) if isinstance(e, tgrun.NotConfigured) else ClientRuntimeError(str(e))
    err.__cause__ = e
    return err


def client_call(fn, *args, **kwargs):
    """Calls a tgrun SDK function, raising its error as tglib would: a bad argument stays
    a ``ValueError`` (the SDK's ``InvalidArgument`` is one), else :func:`from_sdk`."""
    try:
        return fn(*args, **kwargs)
    except tgrun.InvalidArgument:
        raise
    except tgrun.Error as e:
        raise from_sdk(e) from e
