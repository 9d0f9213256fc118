"""``pwd`` for the sandbox, which has no user database: one user, ``tgrun``."""

from typing import List, NamedTuple

USER = "tgrun"
UID = 1000


class struct_passwd(NamedTuple):
    pw_name: str
    pw_passwd: str
    pw_uid: int
    pw_gid: int
    pw_gecos: str
    pw_dir: str
    pw_shell: str


_ME = struct_passwd(USER, "x", UID, UID, "tgrun sandbox", "/", "/bin/false")


def getpwuid(uid: int) -> struct_passwd:
    if uid != UID:
        raise KeyError(f"getpwuid(): uid not found: {uid}")
    return _ME


def getpwnam(name: str) -> struct_passwd:
    if name != USER:
        raise KeyError(f"getpwnam(): name not found: {name!r}")
    return _ME


def getpwall() -> List[struct_passwd]:
    return [_ME]
