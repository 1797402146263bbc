"""ACL schemes and checks (ZooKeeper: `ZooKeeperServer.checkACL`, `PrepRequestProcessor.fixupACL`,
`auth.DigestAuthenticationProvider`, `auth.IPAuthenticationProvider`).

Rules:
- a super caller (superDigest matched, or an id of scheme "super") passes every check;
- an empty ACL list grants everything (ZooKeeper skips the check);
- an entry grants `perm` when its bits include it and its id is world:anyone, or the caller holds an
  id of the same scheme that the scheme's provider matches: digest and the other authenticated
  schemes by equality, ip by address prefix ("a.b.c.d[/bits]", IPv4 only, as ZooKeeper 3.8);
- fixup: duplicates are dropped first; an empty list is InvalidACL; "auth" expands to every
  authenticated id of the caller (ip ids are not "authenticated"; none at all is InvalidACL);
  world is only valid as world:anyone; ip and digest ids must be well formed; any other scheme
  has no provider and is InvalidACL.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from zkref.wire.constants import Perms
from zkref.wire.records import ACL, Id

__all__ = [
    "ANYONE_ID_UNSAFE",
    "AUTH_IDS",
    "CREATOR_ALL_ACL",
    "OPEN_ACL_UNSAFE",
    "READ_ACL_UNSAFE",
    "SUPER_ID",
    "AuthInfo",
    "check_acl",
    "fixup_acl",
    "generate_digest",
    "ip_matches",
    "is_valid_id",
]

ANYONE_ID_UNSAFE = Id("world", "anyone")
AUTH_IDS = Id("auth", "")
SUPER_ID = Id("super", "")
OPEN_ACL_UNSAFE: tuple[ACL, ...] = (ACL(int(Perms.ALL), ANYONE_ID_UNSAFE),)
READ_ACL_UNSAFE: tuple[ACL, ...] = (ACL(int(Perms.READ), ANYONE_ID_UNSAFE),)
CREATOR_ALL_ACL: tuple[ACL, ...] = (ACL(int(Perms.ALL), AUTH_IDS),)

# Schemes with a server-side provider. ip is registered but not "authenticated" (it never
# expands "auth"); sasl and x509 exist only when configured, but if a caller holds such an id its
# provider was configured.
_AUTHENTICATED_SCHEMES = frozenset({"digest", "sasl", "x509"})
_VALIDATED_SCHEMES = frozenset({"digest", "ip"})


@dataclass(frozen=True, slots=True)
class AuthInfo:
    """The ids a connection holds (ZooKeeper's `cnxn.authInfo`): always ("ip", remote address),
    plus ("digest", "user:hash") per successful addauth; `is_super` when superDigest matched."""

    ids: tuple[Id, ...]
    is_super: bool = False

    @classmethod
    def for_ip(cls, remote_ip: str) -> AuthInfo:
        return cls((Id("ip", remote_ip),))


def generate_digest(user_password: str) -> str:
    """`"user:password"` -> `"user:base64(sha1(user:password))"`."""
    user = user_password.split(":", 1)[0]
    digest = hashlib.sha1(user_password.encode("utf-8")).digest()
    return user + ":" + base64.b64encode(digest).decode("ascii")


def _java_parse_int(s: str) -> int | None:
    """`Integer.parseInt`: sign, decimal digits, int32 range; None for NumberFormatException."""
    body = s[1:] if s[:1] in ("+", "-") else s
    if not body or not body.isdecimal():
        return None
    v = int(s)
    if not -(1 << 31) <= v < (1 << 31):
        return None
    return v


def _v4_bytes(addr: str) -> bytes | None:
    parts = addr.split(".")  # keeps empty parts, like split("\\.", -1)
    if len(parts) != 4:
        return None
    out = bytearray(4)
    for i, p in enumerate(parts):
        v = _java_parse_int(p)
        if v is None or not 0 <= v <= 255:
            return None
        out[i] = v
    return bytes(out)


def _mask(b: bytes, bits: int) -> bytes:
    full = int.from_bytes(b, "big")
    width = len(b) * 8
    keep = ((1 << bits) - 1) << (width - bits) if bits else 0
    return (full & keep).to_bytes(len(b), "big")


def _ip_expr(expr: str) -> tuple[bytes, int] | None:
    addr, sep, bits_s = expr.partition("/")
    acl_addr = _v4_bytes(addr)
    if acl_addr is None:
        return None
    bits = len(acl_addr) * 8
    if sep:
        parsed = _java_parse_int(bits_s)
        if parsed is None or not 0 <= parsed <= len(acl_addr) * 8:
            return None
        bits = parsed
    return acl_addr, bits


def ip_matches(remote_ip: str, acl_expr: str) -> bool:
    """IPAuthenticationProvider.matches: IPv4 `addr[/bits]`; an IPv6 caller never matches."""
    parsed = _ip_expr(acl_expr)
    if parsed is None:
        return False
    acl_addr, bits = parsed
    remote = _v4_bytes(remote_ip)
    if remote is None:
        return False
    return _mask(remote, bits) == _mask(acl_addr, bits)


def _digest_valid(id_: str) -> bool:
    # Java's id.split(":") drops trailing empty strings and must leave exactly two parts.
    parts = id_.split(":")
    while len(parts) > 1 and parts[-1] == "":
        parts.pop()
    return len(parts) == 2


def is_valid_id(scheme: str, id_: str) -> bool:
    """The provider's `isValid` for a scheme that may appear in a stored ACL."""
    if scheme == "digest":
        return _digest_valid(id_)
    if scheme == "ip":
        return _ip_expr(id_) is not None
    return False


def _is_super(auth: AuthInfo) -> bool:
    if auth.is_super:
        return True
    return any(i.scheme == "super" for i in auth.ids)


def check_acl(acl: Sequence[ACL], perm: int, auth: AuthInfo) -> bool:
    """True when `auth` may perform an operation needing any bit of `perm` on a node with `acl`."""
    if not acl:
        return True
    for a in acl:
        if not a.perms & perm:
            continue
        scheme = a.id.scheme
        if scheme == "world":
            if a.id.id == "anyone":
                return True
            continue  # no provider for "world"
        if scheme == "ip":
            for held in auth.ids:
                if held.scheme == "ip" and ip_matches(held.id, a.id.id):
                    return True
        elif scheme in _AUTHENTICATED_SCHEMES:
            for held in auth.ids:
                if held.scheme == scheme and held.id == a.id.id:
                    return True
    return _is_super(auth)  # checked last: the common world:anyone case stays cheap


def fixup_acl(acl: Sequence[ACL], auth: AuthInfo) -> tuple[ACL, ...] | None:
    """The ACL list to store, or None for InvalidACL."""
    uniq: list[ACL] = []
    for a in acl:
        if a not in uniq:
            uniq.append(a)
    if not uniq:
        return None
    out: list[ACL] = []
    for a in uniq:
        scheme = a.id.scheme
        if scheme == "world" and a.id.id == "anyone":
            out.append(a)
        elif scheme == "auth":
            expanded = [
                ACL(a.perms, held) for held in auth.ids if held.scheme in _AUTHENTICATED_SCHEMES
            ]
            if not expanded:
                return None
            out.extend(expanded)
        elif scheme in _VALIDATED_SCHEMES and is_valid_id(scheme, a.id.id):
            out.append(a)
        else:
            return None
    return tuple(out)
