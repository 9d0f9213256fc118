"""The errors of jobs and of every SDK call: one class per kind the runner reports."""

from wit_world.imports import types as _wit


class Error(Exception):
    """A failed call or job. ``kind`` is how the runner reports it (``failed``, ...).

    Raise it (or any exception) from a job to end the run as ``error``; catch it around an
    SDK call to decide for yourself.
    """

    kind = "failed"
    _wit_case = _wit.Error_Failed

    def __init__(self, message: str = ""):
        super().__init__(message)
        self.message = str(message)

    def __str__(self) -> str:
        return self.message


class NotConfigured(Error):
    """The runner has no such client configured."""

    kind = "not-configured"
    _wit_case = _wit.Error_NotConfigured


class InvalidArgument(Error, ValueError):
    """The job passed something invalid to a call (or its params did not fit). A
    ``ValueError`` too, as tglib raises for a bad duration or range."""

    kind = "invalid-argument"
    _wit_case = _wit.Error_InvalidArgument


class Upstream(Error):
    """A remote service (Prometheus, a controller, the database) failed or timed out."""

    kind = "upstream"
    _wit_case = _wit.Error_Upstream


class LimitExceeded(Error):
    """A per-run cap of the runner was hit (series written, answer size, rows)."""

    kind = "limit-exceeded"
    _wit_case = _wit.Error_LimitExceeded


class NotPermitted(Error):
    """The job's ``capabilities`` in the configuration do not include this client."""

    kind = "not-permitted"
    _wit_case = _wit.Error_NotPermitted


class Failed(Error):
    """The job's own failure (the same kind as a plain ``Error``)."""


_BY_CASE = {
    cls._wit_case: cls
    for cls in (NotConfigured, InvalidArgument, Upstream, LimitExceeded, NotPermitted, Failed)
}


def from_wit(error) -> Error:
    """The SDK exception for a WIT ``error`` value."""
    return _BY_CASE.get(type(error), Failed)(error.value)


def host_call(fn, *args):
    """Calls a host function, raising its WIT ``error`` as the SDK exception.

    The bindings raise ``componentize_py_types.Err``; jobs see only the classes above.
    """
    from componentize_py_types import Err

    try:
        return fn(*args)
    except Err as e:
        raise from_wit(e.value) from None
