"""``grp`` for the sandbox, which has no group database: one group, ``tgrun``."""

from typing import List, NamedTuple

from .pwd import UID, USER


class struct_group(NamedTuple):
    gr_name: str
    gr_passwd: str
    gr_gid: int
    gr_mem: List[str]


_OURS = struct_group(USER, "x", UID, [USER])


def getgrgid(gid: int) -> struct_group:
    if gid != UID:
        raise KeyError(f"getgrgid(): gid not found: {gid}")
    return _OURS


def getgrnam(name: str) -> struct_group:
    if name != USER:
        raise KeyError(f"getgrnam(): name not found: {name!r}")
    return _OURS


def getgrall() -> List[struct_group]:
    return [_OURS]
