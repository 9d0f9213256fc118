"""``format_address``: ``host:port``, with an IPv6 address in brackets, as tglib writes the
addresses of its clients."""

import ipaddress

__all__ = ["format_address"]


def format_address(host: str, port: int) -> str:
    """``"[::1]:80"`` for an IPv6 address, ``"host:80"`` for anything else."""
    try:
        ipaddress.IPv6Address(host)
    except ipaddress.AddressValueError:
        return f"{host}:{port}"
    return f"[{host}]:{port}"
