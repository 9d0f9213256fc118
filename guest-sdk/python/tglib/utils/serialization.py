"""tglib's older names for Thrift serialization: ``thrift2bytes`` (binary protocol) and
``thrift2json`` (JSON protocol, as a ``str``). Needs ``thrift`` bundled, as ``.thrift``."""

from .thrift import thrift2binary as thrift2bytes
from .thrift import thrift2json as _thrift2json

__all__ = ["thrift2bytes", "thrift2json"]


def thrift2json(thrift_obj) -> str:
    """``thrift_obj`` in Thrift's JSON protocol, decoded as UTF-8."""
    return _thrift2json(thrift_obj).decode("utf-8")
