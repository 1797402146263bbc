"""zkref.core.acl: digest, ip (with /bits), world, auth expansion, super."""

from __future__ import annotations

import pytest

from zkref.core.acl import (
    CREATOR_ALL_ACL,
    OPEN_ACL_UNSAFE,
    READ_ACL_UNSAFE,
    AuthInfo,
    check_acl,
    fixup_acl,
    generate_digest,
    ip_matches,
    is_valid_id,
)
from zkref.wire.constants import Perms
from zkref.wire.records import ACL, Id

R, W, C, D, A, ALL = 1, 2, 4, 8, 16, 31
IP = Id("ip", "10.1.2.3")
BOB = Id("digest", generate_digest("bob:secret"))
ALICE = Id("digest", generate_digest("alice:pw"))


def auth(*ids: Id, is_super: bool = False) -> AuthInfo:
    return AuthInfo((IP, *ids), is_super)


def test_generate_digest_matches_zookeeper() -> None:
    # the value ZooKeeper's docs give for super:test
    assert generate_digest("super:test") == "super:D/InIHSb7yEEbrWz8b9l71RjZJU="
    # only the first ":" splits user from password; the hash covers the whole string
    assert generate_digest("u:p:q").startswith("u:")
    assert generate_digest("u:p:q") != generate_digest("u:p")
    assert generate_digest("nocolon").startswith("nocolon:")


def test_constants() -> None:
    assert (ACL(31, Id("world", "anyone")),) == OPEN_ACL_UNSAFE
    assert (ACL(1, Id("world", "anyone")),) == READ_ACL_UNSAFE
    assert (ACL(31, Id("auth", "")),) == CREATOR_ALL_ACL
    assert Perms.ALL == ALL


def test_world_anyone_and_perm_bits() -> None:
    acl = (ACL(R | W, Id("world", "anyone")),)
    assert check_acl(acl, R, auth())
    assert check_acl(acl, W, auth())
    assert not check_acl(acl, D, auth())
    assert not check_acl(acl, A, auth())
    assert check_acl(acl, R | A, auth())  # any of the bits (getACL asks READ|ADMIN)
    assert not check_acl((ACL(ALL, Id("world", "someone")),), R, auth())


def test_empty_acl_allows_everything() -> None:
    assert check_acl((), A, auth())


def test_digest() -> None:
    acl = (ACL(ALL, BOB),)
    assert check_acl(acl, R, auth(BOB))
    assert not check_acl(acl, R, auth(ALICE))
    assert not check_acl(acl, R, auth())
    # the scheme must match, not just the id string
    assert not check_acl(acl, R, AuthInfo((Id("sasl", BOB.id),)))


def test_super() -> None:
    acl = (ACL(R, BOB),)
    assert check_acl(acl, A, auth(is_super=True))
    assert check_acl(acl, A, auth(Id("super", "")))
    assert not check_acl(acl, A, auth(BOB))


@pytest.mark.parametrize(
    ("remote", "expr", "ok"),
    [
        ("10.1.2.3", "10.1.2.3", True),
        ("10.1.2.4", "10.1.2.3", False),
        ("10.1.2.3", "10.0.0.0/8", True),
        ("11.1.2.3", "10.0.0.0/8", False),
        ("10.1.2.3", "10.1.2.0/24", True),
        ("10.1.3.3", "10.1.2.0/24", False),
        ("10.1.2.3", "10.1.2.2/31", True),
        ("10.1.2.4", "10.1.2.2/31", False),
        ("10.1.2.3", "10.1.2.3/32", True),
        ("192.168.0.1", "0.0.0.0/0", True),
        ("10.1.2.3", "10.1.2.3/33", False),  # bits out of range: never matches
        ("10.1.2.3", "10.1.2.3/x", False),
        ("10.1.2.3", "10.1.2.3/+32", True),  # Integer.parseInt takes a sign
        ("10.1.2.3", "10.1.2.3/ 32", False),
        ("10.1.2.3", "10.1.2", False),
        ("10.1.2.3", "10.1.2.300", False),
        ("0:0:0:0:0:0:0:1", "0.0.0.0/0", False),  # IPv6 callers never match (3.8)
        ("10.1.2.3", "::1", False),
    ],
)
def test_ip(remote: str, expr: str, ok: bool) -> None:
    assert ip_matches(remote, expr) is ok
    acl = (ACL(R, Id("ip", expr)),)
    assert check_acl(acl, R, AuthInfo((Id("ip", remote),))) is ok


def test_is_valid_id() -> None:
    assert is_valid_id("digest", "u:h")
    assert is_valid_id("digest", ":h")
    assert is_valid_id("digest", "u:h:")  # Java's split drops trailing empties
    assert not is_valid_id("digest", "u")
    assert not is_valid_id("digest", "u:")
    assert not is_valid_id("digest", "u:h:x")
    assert is_valid_id("ip", "1.2.3.4")
    assert is_valid_id("ip", "1.2.3.4/0")
    assert not is_valid_id("ip", "1.2.3.4/-1")
    assert not is_valid_id("ip", "1.2.3")
    assert not is_valid_id("ip", "1.2.3.4.")
    assert not is_valid_id("x509", "CN=x")


def test_fixup_acl() -> None:
    assert fixup_acl((), auth()) is None
    assert fixup_acl(OPEN_ACL_UNSAFE * 2, auth()) == OPEN_ACL_UNSAFE
    # auth expands to the caller's authenticated ids; ip ids are not authenticated
    assert fixup_acl(CREATOR_ALL_ACL, auth()) is None
    assert fixup_acl(CREATOR_ALL_ACL, auth(BOB, ALICE)) == (ACL(ALL, BOB), ACL(ALL, ALICE))
    assert fixup_acl((ACL(R, Id("auth", "ignored")),), auth(BOB)) == (ACL(R, BOB),)
    # super is not a provider: it does not expand "auth" and cannot be stored
    assert fixup_acl(CREATOR_ALL_ACL, auth(Id("super", ""))) is None
    assert fixup_acl((ACL(ALL, Id("super", "")),), auth()) is None
    assert fixup_acl((ACL(ALL, Id("world", "nobody")),), auth()) is None
    assert fixup_acl((ACL(ALL, Id("digest", "bob")),), auth()) is None
    assert fixup_acl((ACL(ALL, Id("ip", "1.2.3")),), auth()) is None
    assert fixup_acl((ACL(ALL, Id("x509", "CN=a")),), auth()) is None
    mixed = (ACL(R, Id("ip", "10.0.0.0/8")), ACL(ALL, BOB), ACL(R, Id("world", "anyone")))
    assert fixup_acl(mixed, auth()) == mixed
    # one bad entry spoils the list
    assert fixup_acl((*mixed, ACL(R, Id("bogus", "x"))), auth()) is None
