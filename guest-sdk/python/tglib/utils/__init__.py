"""tglib's helpers that services import: ``tglib.utils.dict`` (``deep_update``),
``tglib.utils.ip`` (``format_address``), and, for services that bundle Apache Thrift,
``tglib.utils.thrift`` and ``tglib.utils.serialization``."""
