"""tglib's conversions between Thrift objects and bytes (binary or JSON protocol), for a
service that bundles Apache Thrift's Python package (``thrift``) and its generated types:
importing this module without ``thrift`` in the component is a ``ModuleNotFoundError``
naming it, as under tglib."""

from typing import Callable, Protocol

from thrift.protocol import TBinaryProtocol, TJSONProtocol, TProtocol
from thrift.transport import TTransport

__all__ = ["Thrift", "binary2thrift", "json2thrift", "thrift2binary", "thrift2json"]


class Thrift(Protocol):
    """What a generated Thrift type has: ``read`` and ``write`` over a protocol (for type
    hints)."""

    def read(self, iproto: TProtocol.TProtocolBase) -> None: ...

    def write(self, oproto: TProtocol.TProtocolBase) -> None: ...


def _read(base: Callable, serialized: bytes, protocol) -> Thrift:
    obj = base()
    obj.read(protocol(TTransport.TMemoryBuffer(serialized)))
    return obj


def _write(obj: Thrift, protocol) -> bytes:
    buffer = TTransport.TMemoryBuffer()
    obj.write(protocol(buffer))
    return buffer.getvalue()


def binary2thrift(base: Callable, serialized: bytes) -> Thrift:
    """A ``base`` (a generated type) read from Thrift's binary protocol."""
    return _read(base, serialized, TBinaryProtocol.TBinaryProtocol)


def json2thrift(base: Callable, serialized: bytes) -> Thrift:
    """A ``base`` read from Thrift's JSON protocol."""
    return _read(base, serialized, TJSONProtocol.TJSONProtocol)


def thrift2binary(thrift_obj: Thrift) -> bytes:
    """``thrift_obj`` in Thrift's binary protocol."""
    return _write(thrift_obj, TBinaryProtocol.TBinaryProtocol)


def thrift2json(thrift_obj: Thrift) -> bytes:
    """``thrift_obj`` in Thrift's JSON protocol (bytes, as tglib's ``utils.thrift``)."""
    return _write(thrift_obj, TJSONProtocol.TJSONProtocol)
