"""Differential tests: the same scripted operations on Apache ZooKeeper 3.8 and on zkref, every
reply, error code, Stat field and watch event compared field by field (tests/support/differential).

Each scenario is a small script on its own subtree `/<name>`; all scenarios share one module-scoped
pair of servers (a second pair runs with extended types for TTL nodes). A scenario that shows a
zkref bug is marked xfail(strict) with the bug in its reason, so fixing the bug flips it to a
failure that asks for the mark to go.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from support.differential import (
    OPEN,
    Abandon,
    AwaitClose,
    AwaitEvents,
    Connect,
    Cut,
    Handshake,
    Move,
    Pipeline,
    Raw,
    Reattach,
    Reclaim,
    Req,
    S,
    SetWatchesStep,
    Step,
    StepRecord,
    T,
    Transcript,
    Z,
    compare,
    digest_id,
    format_mismatches,
    normalise,
    render,
    run_pair,
    run_script,
)
from support.servers import standalone
from zkref.wire.codec import Request
from zkref.wire.constants import DEFAULT_JUTE_MAXBUFFER, OpCode
from zkref.wire.records import (
    ACL,
    AddWatchRequest,
    AuthPacket,
    CheckVersionRequest,
    CheckWatchesRequest,
    CreateRequest,
    CreateTTLRequest,
    DeleteRequest,
    ExistsRequest,
    GetACLRequest,
    GetAllChildrenNumberRequest,
    GetChildren2Request,
    GetChildrenRequest,
    GetDataRequest,
    GetEphemeralsRequest,
    GetSASLRequest,
    Id,
    MultiOpRequest,
    MultiReadOpRequest,
    MultiReadRequest,
    MultiRequest,
    ReconfigRequest,
    RemoveWatchesRequest,
    SetACLRequest,
    SetDataRequest,
    SyncRequest,
)

pytestmark = [pytest.mark.slow, pytest.mark.zookeeper]

TICK_MS = 200  # sessions: min 400 ms, max 4 s

# --- request helpers ---------------------------------------------------------------------------


def create(
    p: str,
    data: bytes | None = b"",
    flags: int = 0,
    acl: tuple[ACL, ...] = OPEN,
    s: str = "a",
    op: int = OpCode.create,
) -> Req:
    return Req(op, CreateRequest(p, data, acl, flags), s)


def create2(p: str, data: bytes | None = b"", flags: int = 0, s: str = "a") -> Req:
    return create(p, data, flags, s=s, op=OpCode.create2)


def container(p: str, flags: int = 4, s: str = "a") -> Req:
    return create(p, b"", flags, s=s, op=OpCode.createContainer)


def ttl(p: str, ttl_ms: int, flags: int = 5, s: str = "a") -> Req:
    return Req(OpCode.createTTL, CreateTTLRequest(p, b"t", OPEN, flags, ttl_ms), s)


def delete(p: str, v: int = -1, s: str = "a") -> Req:
    return Req(OpCode.delete, DeleteRequest(p, v), s)


def exists(p: str, w: bool = False, s: str = "a") -> Req:
    return Req(OpCode.exists, ExistsRequest(p, w), s)


def get(p: str, w: bool = False, s: str = "a") -> Req:
    return Req(OpCode.getData, GetDataRequest(p, w), s)


def set_(p: str, data: bytes | None, v: int = -1, s: str = "a") -> Req:
    return Req(OpCode.setData, SetDataRequest(p, data, v), s)


def getacl(p: str, s: str = "a") -> Req:
    return Req(OpCode.getACL, GetACLRequest(p), s)


def setacl(p: str, acl: tuple[ACL, ...], v: int = -1, s: str = "a") -> Req:
    return Req(OpCode.setACL, SetACLRequest(p, acl, v), s)


def ls(p: str, w: bool = False, s: str = "a") -> Req:
    return Req(OpCode.getChildren, GetChildrenRequest(p, w), s)


def ls2(p: str, w: bool = False, s: str = "a") -> Req:
    return Req(OpCode.getChildren2, GetChildren2Request(p, w), s)


def sync(p: str, s: str = "a") -> Req:
    return Req(OpCode.sync, SyncRequest(p), s)


def multi(*ops: tuple[int, MultiOpRequest], s: str = "a") -> Req:
    return Req(OpCode.multi, MultiRequest(tuple(ops)), s)


def m_create(p: str, data: bytes = b"", flags: int = 0) -> tuple[int, MultiOpRequest]:
    return (OpCode.create, CreateRequest(p, data, OPEN, flags))


def m_delete(p: str, v: int = -1) -> tuple[int, MultiOpRequest]:
    return (OpCode.delete, DeleteRequest(p, v))


def m_set(p: str, data: bytes, v: int = -1) -> tuple[int, MultiOpRequest]:
    return (OpCode.setData, SetDataRequest(p, data, v))


def m_check(p: str, v: int) -> tuple[int, MultiOpRequest]:
    return (OpCode.check, CheckVersionRequest(p, v))


def mread(*ops: tuple[int, MultiReadOpRequest], s: str = "a") -> Req:
    return Req(OpCode.multiRead, MultiReadRequest(tuple(ops)), s)


def r_get(p: str, w: bool = False) -> tuple[int, MultiReadOpRequest]:
    return (OpCode.getData, GetDataRequest(p, w))


def r_ls(p: str, w: bool = False) -> tuple[int, MultiReadOpRequest]:
    return (OpCode.getChildren, GetChildrenRequest(p, w))


def checkw(p: str, t: int, s: str = "a") -> Req:
    return Req(OpCode.checkWatches, CheckWatchesRequest(p, t), s)


def removew(p: str, t: int, s: str = "a") -> Req:
    return Req(OpCode.removeWatches, RemoveWatchesRequest(p, t), s)


def addwatch(p: str, mode: int, s: str = "a") -> Req:
    return Req(OpCode.addWatch, AddWatchRequest(p, mode), s)


def ephemerals(prefix: str, s: str = "a") -> Req:
    return Req(OpCode.getEphemerals, GetEphemeralsRequest(prefix), s)


def allchildren(p: str, s: str = "a") -> Req:
    return Req(OpCode.getAllChildrenNumber, GetAllChildrenNumberRequest(p), s)


def whoami(s: str = "a") -> Req:
    return Req(OpCode.whoAmI, None, s)


def auth(scheme: str, cred: bytes, s: str = "a", closes: bool = False) -> Req:
    return Req(OpCode.auth, AuthPacket(0, scheme, cred), s, closes=closes)


def close(s: str = "a", unordered: bool = True) -> Req:
    return Req(OpCode.closeSession, None, s, closes=True, unordered=unordered)


PERSISTENT, EPHEMERAL, PERSISTENT_SEQ, EPHEMERAL_SEQ, CONTAINER, TTL, TTL_SEQ = range(7)
CHILDREN, DATA, ANY, WPERSISTENT, WRECURSIVE = 1, 2, 3, 4, 5
AW_PERSISTENT, AW_RECURSIVE = 0, 1
ALICE = digest_id("alice", "secret")
BOB = digest_id("bob", "hunter2")

# --- scenarios ---------------------------------------------------------------------------------


def sc_create_modes(b: str) -> list[Step]:
    return [
        Connect("a"),
        create(b, b"root-of-scenario"),
        create(f"{b}/p", b"data"),
        create(f"{b}/e", b"eph", EPHEMERAL),
        create(f"{b}/ps-", b"", PERSISTENT_SEQ),
        create(f"{b}/es-", b"", EPHEMERAL_SEQ),
        create(f"{b}/c", b"", CONTAINER),
        create(f"{b}/t", b"", TTL),
        create(f"{b}/ts", b"", TTL_SEQ),
        create(f"{b}/bad7", b"", 7),
        create(f"{b}/badneg", b"", -1),
        create2(f"{b}/p2", b"xy"),
        create2(f"{b}/e2", b"", EPHEMERAL),
        create2(f"{b}/s2-", b"", PERSISTENT_SEQ),
        create2(f"{b}/es2-", None, EPHEMERAL_SEQ),
        container(f"{b}/cc"),
        container(f"{b}/cc0", flags=PERSISTENT),
        container(f"{b}/cc1", flags=EPHEMERAL),
        create2(f"{b}/c2", b"", CONTAINER),
        ttl(f"{b}/ttl", 10_000),
        exists(f"{b}/e"),
        get(f"{b}/p"),
        get(f"{b}/es2-0000000008"),
        ls2(b),
    ]


def sc_create_errors(b: str) -> list[Step]:
    return [
        Connect("a"),
        create(b),
        create(b),
        create(f"{b}/no/parent"),
        create(f"{b}/e", flags=EPHEMERAL),
        create(f"{b}/e/child"),
        create(f"{b}/e/child", flags=EPHEMERAL),
        create(f"{b}/e/s-", flags=PERSISTENT_SEQ),
        create(f"{b}/nodata", None),
        get(f"{b}/nodata"),
        create(f"{b}/noacl", b"", acl=()),
        create2(f"{b}/e"),
        create2(f"{b}/x/y"),
        exists(b),
    ]


def sc_delete(b: str) -> list[Step]:
    return [
        Connect("a"),
        create(b),
        create(f"{b}/x", b"1"),
        create(f"{b}/x/y"),
        delete(f"{b}/nope"),
        delete(f"{b}/x"),
        delete(f"{b}/x/y", 5),
        delete(f"{b}/x/y", 0),
        ls2(f"{b}/x"),
        set_(f"{b}/x", b"2"),
        delete(f"{b}/x", 0),
        delete(f"{b}/x", 1),
        exists(f"{b}/x"),
        ls2(b),
        delete(f"{b}/x"),
    ]


def sc_get_set(b: str) -> list[Step]:
    return [
        Connect("a"),
        create(b, b"v0"),
        get(b),
        set_(b, b"v1"),
        set_(b, b"v2", 1),
        set_(b, b"v3", 1),
        set_(b, b"v3", -2),
        set_(b, None),
        get(b),
        set_(b, b""),
        get(b),
        set_(f"{b}/none", b"x"),
        get(f"{b}/none"),
        exists(f"{b}/none"),
        exists(b),
    ]


def sc_acl_digest(b: str) -> list[Step]:
    dig = (ACL(31, Id("digest", ALICE)),)
    return [
        Connect("a"),
        Connect("b"),
        create(b),
        create(f"{b}/d", b"secret", acl=dig),
        get(f"{b}/d"),
        getacl(f"{b}/d"),
        set_(f"{b}/d", b"x"),
        create(f"{b}/d/c"),
        delete(f"{b}/d"),
        exists(f"{b}/d"),
        ls(f"{b}/d"),
        auth("digest", b"alice:wrong"),
        get(f"{b}/d"),
        auth("digest", b"alice:secret", s="b"),
        get(f"{b}/d", s="b"),
        set_(f"{b}/d", b"y", s="b"),
        getacl(f"{b}/d", s="b"),
        setacl(f"{b}/d", OPEN, 5, s="b"),
        setacl(f"{b}/d", (ACL(1, Id("digest", ALICE)), ACL(16, Id("digest", BOB))), 0, s="b"),
        getacl(f"{b}/d", s="b"),
        setacl(f"{b}/d", OPEN, s="b"),
        get(f"{b}/d", s="b"),
        whoami(s="b"),
        whoami(),
    ]


def sc_acl_schemes(b: str) -> list[Step]:
    return [
        Connect("a"),
        create(b),
        create(f"{b}/ip", b"i", acl=(ACL(31, Id("ip", "127.0.0.1")),)),
        get(f"{b}/ip"),
        create(f"{b}/ipnet", b"i", acl=(ACL(31, Id("ip", "127.0.0.0/8")),)),
        get(f"{b}/ipnet"),
        create(f"{b}/ipother", b"i", acl=(ACL(31, Id("ip", "10.1.2.3")),)),
        get(f"{b}/ipother"),
        create(f"{b}/ipbad", b"i", acl=(ACL(31, Id("ip", "not-an-ip")),)),
        create(f"{b}/ipbits", b"i", acl=(ACL(31, Id("ip", "127.0.0.1/33")),)),
        create(f"{b}/world", b"w", acl=(ACL(1, Id("world", "anyone")),)),
        set_(f"{b}/world", b"x"),
        create(f"{b}/world/c"),
        create(f"{b}/worldbad", b"w", acl=(ACL(31, Id("world", "someone")),)),
        create(f"{b}/nosuch", b"w", acl=(ACL(31, Id("nosuch", "x")),)),
        create(f"{b}/digbad", b"w", acl=(ACL(31, Id("digest", "nocolon")),)),
        create(f"{b}/auth0", b"w", acl=(ACL(31, Id("auth", "")),)),
        create(f"{b}/perm0", b"w", acl=(ACL(0, Id("world", "anyone")),)),
        get(f"{b}/perm0"),
        getacl(f"{b}/perm0"),
        create(f"{b}/perm99", b"w", acl=(ACL(99, Id("world", "anyone")),)),
        getacl(f"{b}/perm99"),
        create(f"{b}/dup", b"w", acl=OPEN + OPEN),
        getacl(f"{b}/dup"),
        auth("digest", b"alice:secret"),
        create(f"{b}/auth1", b"w", acl=(ACL(31, Id("auth", "")),)),
        getacl(f"{b}/auth1"),
        create(f"{b}/auth2", b"w", acl=(ACL(7, Id("auth", "whatever")),)),
        getacl(f"{b}/auth2"),
        auth("ip", b"ignored"),
        whoami(),
    ]


def sc_acl_perms(b: str) -> list[Step]:
    def only(perms: int) -> tuple[ACL, ...]:
        return (ACL(perms, Id("world", "anyone")),)

    return [
        Connect("a"),
        create(b),
        create(f"{b}/r", b"r", acl=only(1)),
        create(f"{b}/r/c"),
        set_(f"{b}/r", b"x"),
        setacl(f"{b}/r", OPEN),
        ls(f"{b}/r"),
        create(f"{b}/w", b"w", acl=only(2)),
        get(f"{b}/w"),
        ls(f"{b}/w"),
        getacl(f"{b}/w"),
        set_(f"{b}/w", b"x"),
        create(f"{b}/cd", b"", acl=only(4)),
        create(f"{b}/cd/x"),
        delete(f"{b}/cd/x"),
        setacl(f"{b}/cd", only(4 | 8), 0),
        create(f"{b}/a", b"", acl=only(16)),
        getacl(f"{b}/a"),
        get(f"{b}/a"),
        setacl(f"{b}/a", only(17), 0),
        get(f"{b}/a"),
        getacl(f"{b}/a"),
        exists(f"{b}/a"),
    ]


def sc_super_digest(b: str) -> list[Step]:
    locked = (ACL(31, Id("digest", BOB)),)
    return [
        Connect("a"),
        Connect("s"),
        create(b),
        create(f"{b}/locked", b"bob's", acl=locked),
        create(f"{b}/none", b"nobody", acl=(ACL(0, Id("world", "anyone")),)),
        get(f"{b}/locked", s="s"),
        auth("digest", b"super:wrong", s="s"),
        get(f"{b}/locked", s="s"),
        auth("digest", b"super:opensesame", s="s"),
        whoami(s="s"),
        get(f"{b}/locked", s="s"),
        get(f"{b}/none", s="s"),
        getacl(f"{b}/locked", s="s"),
        set_(f"{b}/locked", b"super was here", s="s"),
        create(f"{b}/locked/kid", s="s"),
        delete(f"{b}/locked/kid", s="s"),
        setacl(f"{b}/none", OPEN, s="s"),
        set_("/zookeeper/config", b"", s="s"),
        get("/zookeeper/config", s="s"),
        create(f"{b}/auth", acl=(ACL(31, Id("auth", "")),), s="s"),
        getacl(f"{b}/auth", s="s"),
        get(f"{b}/auth"),
    ]


def sc_setacl_versions(b: str) -> list[Step]:
    return [
        Connect("a"),
        create(b),
        setacl(b, OPEN, 0),
        setacl(b, OPEN, 0),
        setacl(b, OPEN, 1),
        setacl(b, OPEN, -1),
        getacl(b),
        setacl(f"{b}/none", OPEN),
        getacl(f"{b}/none"),
        setacl(b, ()),
        setacl(b, (ACL(31, Id("ip", "bad")),)),
        setacl(b, (ACL(31, Id("auth", "")),)),
        exists(b),
    ]


def sc_children(b: str) -> list[Step]:
    return [
        Connect("a"),
        create(b),
        ls(b),
        ls2(b),
        *[create(f"{b}/{n}") for n in ("zeta", "alpha", "mid", "b2", "b10")],
        create(f"{b}/eph", flags=EPHEMERAL),
        ls(b),
        ls2(b),
        ls(f"{b}/eph"),
        ls2(f"{b}/nope"),
        ls(f"{b}/nope"),
        delete(f"{b}/mid"),
        ls2(b),
    ]


def sc_sequential(b: str) -> list[Step]:
    return [
        Connect("a"),
        create(b),
        create(f"{b}/n-", flags=PERSISTENT_SEQ),
        create(f"{b}/n-", flags=PERSISTENT_SEQ),
        create(f"{b}/plain"),
        create(f"{b}/n-", flags=EPHEMERAL_SEQ),
        ls2(b),
        delete(f"{b}/n-0000000001"),
        ls2(b),
        create(f"{b}/n-", flags=PERSISTENT_SEQ),
        delete(f"{b}/plain"),
        delete(f"{b}/n-0000000000"),
        ls2(b),
        create2(f"{b}/", flags=PERSISTENT_SEQ),
        create2(f"{b}/x", flags=PERSISTENT_SEQ),
        multi(m_create(f"{b}/m-", flags=PERSISTENT_SEQ), m_create(f"{b}/m-", flags=2)),
        multi(m_create(f"{b}/tmp"), m_delete(f"{b}/tmp"), m_create(f"{b}/m-", flags=2)),
        ls2(b),
        create(f"{b}/s"),
        *[create(f"{b}/s/c{i}") for i in range(3)],
        *[delete(f"{b}/s/c{i}") for i in range(3)],
        ls2(f"{b}/s"),
        create(f"{b}/s/q-", flags=PERSISTENT_SEQ),
        ls2(f"{b}/s"),
    ]


def sc_watches_oneshot(b: str) -> list[Step]:
    return [
        Connect("a"),
        Connect("b"),
        create(b),
        create(f"{b}/x", b"1"),
        get(f"{b}/x", True),
        get(f"{b}/x", True, s="b"),
        set_(f"{b}/x", b"2"),
        set_(f"{b}/x", b"3"),
        exists(f"{b}/y", True),
        exists(f"{b}/y", True, s="b"),
        create(f"{b}/y", s="b"),
        ls(b, True),
        ls2(b, True, s="b"),
        create(f"{b}/z"),
        exists(f"{b}/x", True),
        get(f"{b}/x", True, s="b"),
        ls(f"{b}/x", True, s="b"),
        ls(b, True),
        delete(f"{b}/x"),
        exists(f"{b}/z", True),
        get(f"{b}/z", True),
        ls(f"{b}/z", True),
        create(f"{b}/z/c", s="b"),
        delete(f"{b}/z/c", s="b"),
        delete(f"{b}/z", s="b"),
        get(f"{b}/nope", True),
        ls(f"{b}/nope", True),
        create(f"{b}/nope"),
    ]


def sc_watch_edges(b: str) -> list[Step]:
    return [
        Connect("a"),
        Connect("b"),
        create(b),
        create(f"{b}/x", b"0"),
        # data watch and exist watch of one session on one node: one event
        get(f"{b}/x", True, s="b"),
        exists(f"{b}/x", True, s="b"),
        set_(f"{b}/x", b"1"),
        # data + child watch on a node that is deleted: one NodeDeleted per watcher
        get(f"{b}/x", True, s="b"),
        ls(f"{b}/x", True, s="b"),
        ls(b, True, s="b"),
        delete(f"{b}/x"),
        # setACL fires no watch
        create(f"{b}/y"),
        get(f"{b}/y", True, s="b"),
        setacl(f"{b}/y", OPEN),
        set_(f"{b}/y", b"now"),
        # a multi that creates and deletes: events in op order, one-shot watches fire once
        exists(f"{b}/t", True, s="b"),
        ls(b, True, s="b"),
        multi(m_create(f"{b}/t"), m_set(f"{b}/t", b"s"), m_delete(f"{b}/t")),
        # a failed multi fires nothing
        exists(f"{b}/u", True, s="b"),
        multi(m_create(f"{b}/u"), m_check(f"{b}/y", 42)),
        create(f"{b}/u"),
        # recursive watch and a child watch of the same session
        addwatch(b, AW_RECURSIVE, s="b"),
        ls(b, True, s="b"),
        create(f"{b}/v"),
        create(f"{b}/w"),
        # the watching session's own write
        get(f"{b}/y", True, s="b"),
        set_(f"{b}/y", b"own", s="b"),
        # a watch on the root
        ls("/", True, s="b"),
        exists("/", True, s="b"),
        create(f"{b}/z"),
    ]


def _body(r: Req) -> tuple[int, Request | bytes | None]:
    return (r.op, r.body)


def sc_pipelined(b: str) -> list[Step]:
    x = f"{b}/x"
    return [
        Connect("a"),
        Connect("b"),
        create(b),
        ls(b, True),
        Pipeline(
            "b",
            tuple(
                _body(r)
                for r in (
                    create(x, b"0"),
                    get(x, True),
                    set_(x, b"1"),
                    set_(x, b"2", 0),
                    ls2(b, True),
                    create(f"{x}/c", flags=EPHEMERAL),
                    exists(f"{x}/c", True),
                    multi(m_delete(f"{x}/c"), m_check(x, 5)),
                    sync(b),
                    delete(f"{x}/c"),
                    delete(x),
                    get(x),
                    exists(x, True),
                    create(x),
                )
            ),
        ),
        exists(x),
    ]


def sc_multi_success(b: str) -> list[Step]:
    return [
        Connect("a"),
        Connect("b"),
        create(b),
        create(f"{b}/k", b"0"),
        get(f"{b}/k", True, s="b"),
        ls(b, True, s="b"),
        multi(
            m_create(f"{b}/n1", b"a"),
            m_set(f"{b}/k", b"1", 0),
            m_check(f"{b}/k", 1),
            m_create(f"{b}/n2", b"b", EPHEMERAL),
            m_delete(f"{b}/n1"),
            m_create(f"{b}/s-", b"", PERSISTENT_SEQ),
        ),
        ls2(b),
        get(f"{b}/k"),
        multi(m_check(f"{b}/k", 1)),
        multi(m_set(f"{b}/k", b"2"), m_set(f"{b}/k", b"3"), m_check(f"{b}/k", 3)),
        get(f"{b}/k"),
    ]


def _failing_multi(b: str, pos: int) -> list[Step]:
    ops = [m_create(f"{b}/f{pos}a"), m_set(f"{b}/k", b"x"), m_create(f"{b}/f{pos}c")]
    ops[pos] = m_check(f"{b}/k", 99)
    return [multi(*ops), exists(f"{b}/f{pos}a"), get(f"{b}/k")]


def sc_multi_failures(b: str) -> list[Step]:
    return [
        Connect("a"),
        create(b),
        create(f"{b}/k", b"0"),
        get(f"{b}/k", True),
        *_failing_multi(b, 0),
        *_failing_multi(b, 1),
        *_failing_multi(b, 2),
        multi(m_create(f"{b}/ok"), m_create(f"{b}/k"), m_delete(f"{b}/none")),
        multi(m_create(f"{b}/ok"), m_delete(f"{b}/none"), m_set(f"{b}/k", b"", 7)),
        multi(m_delete(f"{b}/k", 5)),
        multi(m_set(f"{b}/none", b"")),
        multi(m_check(f"{b}/none", 0)),
        multi(m_create(f"{b}/bad/")),
        multi(m_create(f"{b}/ok"), m_create(f"{b}//x")),
        multi(m_create(f"{b}/e", flags=EPHEMERAL), m_create(f"{b}/e/c")),
        multi(m_create(f"{b}/p"), m_create(f"{b}/p/c"), m_delete(f"{b}/p")),
        multi(m_create(f"{b}/tt", flags=TTL)),
        multi((OpCode.create2, CreateRequest(f"{b}/c2", b"", OPEN, 0))),
        multi((OpCode.createContainer, CreateRequest(f"{b}/cc", b"", OPEN, 4))),
        ls2(b),
        exists(f"{b}/ok"),
    ]


def sc_multi_empty(b: str) -> list[Step]:
    return [Connect("a"), create(b), multi(), exists(b), multi(), mread(), exists(b)]


def sc_multi_read(b: str) -> list[Step]:
    return [
        Connect("a"),
        create(b, b"top"),
        create(f"{b}/c1", b"one"),
        create(f"{b}/c2"),
        mread(r_get(b), r_get(f"{b}/none"), r_ls(b), r_ls(f"{b}/none"), r_get(f"{b}/c1")),
        mread(r_get(f"{b}//bad"), r_ls("bad"), r_get("/zookeeper/config")),
        mread(r_get(f"{b}/c2")),
        mread(r_ls(f"{b}/c1"), r_ls(f"{b}/c1"), r_ls(b)),
    ]


def sc_multi_read_watch_flags(b: str) -> list[Step]:
    # Apache rebuilds each read op with Op.getData(path)/Op.getChildren(path), dropping the
    # request's watch flag: a multiRead never leaves a watch.
    return [
        Connect("a"),
        Connect("b"),
        create(b, b"top"),
        create(f"{b}/c1", b"one"),
        mread(r_get(f"{b}/c1", True), r_ls(b, True), r_get(f"{b}/none", True)),
        set_(f"{b}/c1", b"1", s="b"),
        create(f"{b}/c3", s="b"),
        create(f"{b}/none", s="b"),
        get(f"{b}/c1"),
    ]


def sc_check_remove_watches(b: str) -> list[Step]:
    return [
        Connect("a"),
        Connect("b"),
        create(b),
        create(f"{b}/x"),
        *[checkw(f"{b}/x", t) for t in (CHILDREN, DATA, ANY, WPERSISTENT, WRECURSIVE)],
        *[removew(f"{b}/x", t) for t in (CHILDREN, DATA, ANY, WPERSISTENT, WRECURSIVE)],
        checkw(f"{b}/x", 9),
        get(f"{b}/x", True),
        checkw(f"{b}/x", DATA),
        checkw(f"{b}/x", CHILDREN),
        checkw(f"{b}/x", ANY),
        checkw(f"{b}/x", DATA, s="b"),
        removew(f"{b}/x", CHILDREN),
        removew(f"{b}/x", DATA),
        checkw(f"{b}/x", DATA),
        set_(f"{b}/x", b"no event"),
        ls(f"{b}/x", True),
        exists(f"{b}/x", True),
        checkw(f"{b}/x", CHILDREN),
        removew(f"{b}/x", ANY),
        checkw(f"{b}/x", ANY),
        create(f"{b}/x/c"),
        exists(f"{b}/missing", True),
        checkw(f"{b}/missing", DATA),
        removew(f"{b}/missing", DATA),
        create(f"{b}/missing"),
        addwatch(f"{b}/x", AW_PERSISTENT),
        checkw(f"{b}/x", WPERSISTENT),
        checkw(f"{b}/x", DATA),
        checkw(f"{b}/x", WRECURSIVE),
        removew(f"{b}/x", WRECURSIVE),
        removew(f"{b}/x", WPERSISTENT),
        set_(f"{b}/x", b"after"),
        addwatch(f"{b}/x", AW_RECURSIVE),
        checkw(f"{b}/x", WRECURSIVE),
        checkw(f"{b}/x", ANY),
        removew(f"{b}/x", ANY),
        set_(f"{b}/x", b"after2"),
        checkw(f"{b}/nonexistent", ANY),
        removew("//", ANY),
    ]


def sc_addwatch_persistent(b: str) -> list[Step]:
    return [
        Connect("a"),
        Connect("b"),
        create(b),
        addwatch(f"{b}/w", AW_PERSISTENT, s="b"),
        create(f"{b}/w", b"0"),
        set_(f"{b}/w", b"1"),
        create(f"{b}/w/c"),
        set_(f"{b}/w/c", b"child data"),
        create(f"{b}/w/c/g"),
        delete(f"{b}/w/c/g"),
        delete(f"{b}/w/c"),
        delete(f"{b}/w"),
        create(f"{b}/w"),
        get(f"{b}/w", True, s="b"),
        set_(f"{b}/w", b"both"),
        set_(f"{b}/w", b"again"),
        addwatch(f"{b}/w", AW_PERSISTENT),
        set_(f"{b}/w", b"own", s="a"),
        addwatch(f"{b}//bad", AW_PERSISTENT),
        addwatch(f"{b}/w", 7),
    ]


def sc_addwatch_recursive(b: str) -> list[Step]:
    return [
        Connect("a"),
        Connect("b"),
        create(b),
        addwatch(f"{b}/r", AW_RECURSIVE, s="b"),
        create(f"{b}/r"),
        create(f"{b}/r/a"),
        create(f"{b}/r/a/b", b"deep"),
        set_(f"{b}/r/a/b", b"deeper"),
        set_(f"{b}/r", b"top"),
        create(f"{b}/r/e", flags=EPHEMERAL),
        delete(f"{b}/r/a/b"),
        multi(m_create(f"{b}/r/m1"), m_create(f"{b}/r/m1/m2"), m_set(f"{b}/r", b"m")),
        create(f"{b}/rx"),
        create(f"{b}/other"),
        ls(f"{b}/r", True, s="b"),
        create(f"{b}/r/z"),
        addwatch("/", AW_RECURSIVE),
        create(f"{b}/r/z/y"),
        removew("/", WRECURSIVE),
        delete(f"{b}/r/z/y"),
    ]


def sc_watch_mode_combos(b: str) -> list[Step]:
    x, y = f"{b}/x", f"{b}/x/y"
    return [
        Connect("a"),
        Connect("b"),
        create(b),
        create(x),
        create(y),
        # persistent + one-shot data watch on one node, one watcher
        addwatch(x, AW_PERSISTENT, s="b"),
        get(x, True, s="b"),
        set_(x, b"1"),
        set_(x, b"2"),
        removew(x, DATA, s="b"),
        set_(x, b"3"),
        checkw(x, ANY, s="b"),
        # recursive on the parent + persistent on the child + one-shot on the child
        addwatch(b, AW_RECURSIVE, s="b"),
        addwatch(y, AW_PERSISTENT, s="b"),
        get(y, True, s="b"),
        ls(y, True, s="b"),
        set_(y, b"1"),
        create(f"{y}/z"),
        delete(f"{y}/z"),
        delete(y),
        # persistent then recursive on the same path (3.8: one mode per watcher and path)
        addwatch(x, AW_RECURSIVE, s="b"),
        create(y),
        set_(x, b"4"),
        removew(x, WPERSISTENT, s="b"),
        set_(x, b"5"),
        removew(x, WRECURSIVE, s="b"),
        set_(x, b"6"),
        removew(b, WRECURSIVE, s="b"),
        removew(y, ANY, s="b"),
        set_(y, b"7"),
        set_(x, b"8"),
    ]


def sc_setwatches_reconnect(b: str) -> list[Step]:
    return [
        Connect("a", via_proxy=True),
        Connect("b"),
        create(b),
        create(f"{b}/d", b"0"),
        create(f"{b}/c"),
        create(f"{b}/gone"),
        create(f"{b}/same"),
        get(f"{b}/d", True),
        exists(f"{b}/new", True),
        ls(f"{b}/c", True),
        exists(f"{b}/gone", True),
        get(f"{b}/same", True),
        Cut("a"),
        set_(f"{b}/d", b"changed while cut", s="b"),
        create(f"{b}/new", s="b"),
        create(f"{b}/c/child", s="b"),
        delete(f"{b}/gone", s="b"),
        Reattach("a"),
        SetWatchesStep(
            "a",
            101,
            data=(f"{b}/d", f"{b}/same", f"{b}/missing"),
            exist=(f"{b}/new", f"{b}/gone", f"{b}/never"),
            child=(f"{b}/c", f"{b}/nochild"),
        ),
        set_(f"{b}/same", b"now", s="b"),
        create(f"{b}/never", s="b"),
        set_(f"{b}/d", b"watch was consumed", s="b"),
        get(f"{b}/d"),
    ]


def sc_setwatches2_reconnect(b: str) -> list[Step]:
    return [
        Connect("a", via_proxy=True),
        Connect("b"),
        create(b),
        create(f"{b}/p"),
        create(f"{b}/r"),
        create(f"{b}/d"),
        addwatch(f"{b}/p", AW_PERSISTENT),
        addwatch(f"{b}/r", AW_RECURSIVE),
        get(f"{b}/d", True),
        Cut("a"),
        set_(f"{b}/p", b"missed", s="b"),
        create(f"{b}/r/missed", s="b"),
        set_(f"{b}/d", b"fires", s="b"),
        Reattach("a"),
        SetWatchesStep("a", 105, data=(f"{b}/d",), persistent=(f"{b}/p",), recursive=(f"{b}/r",)),
        set_(f"{b}/p", b"seen", s="b"),
        create(f"{b}/r/seen", s="b"),
        create(f"{b}/p/kid", s="b"),
        checkw(f"{b}/p", WPERSISTENT),
        checkw(f"{b}/r", WRECURSIVE),
        SetWatchesStep("a", 101, data=(f"{b}/p",)),
        SetWatchesStep("a", 105),
    ]


def sc_setwatches_relative_zxid(b: str) -> list[Step]:
    # setWatches on a live connection: with relativeZxid 0 every watch whose node exists fires,
    # with one ahead of the server only missing nodes (NodeDeleted) and existing ones
    # (NodeCreated, for exist watches) fire.
    paths = dict(
        data=(f"{b}/d", f"{b}/none"),
        exist=(f"{b}/d", f"{b}/none2"),
        child=(f"{b}", f"{b}/none3"),
    )
    return [
        Connect("a"),
        Connect("b"),
        create(b),
        create(f"{b}/d", b"0"),
        SetWatchesStep("a", 101, relative="zero", **paths),
        SetWatchesStep("a", 101, relative="ahead", **paths),
        set_(f"{b}/d", b"1", s="b"),
        create(f"{b}/none", s="b"),
        create(f"{b}/none2", s="b"),
        SetWatchesStep("a", 101, relative="last", **paths),
        SetWatchesStep("a", 105, relative="zero", persistent=(f"{b}/d",), recursive=(b,)),
        set_(f"{b}/d", b"2", s="b"),
        SetWatchesStep("a", 101, relative="zero", data=("//bad", "relative")),
    ]


def sc_odd_xids(b: str) -> list[Step]:
    return [
        Connect("a"),
        create(b),
        Req(OpCode.exists, ExistsRequest(b, False), xid=0),
        Req(OpCode.exists, ExistsRequest(b, False), xid=-3),
        Req(OpCode.exists, ExistsRequest(b, False), xid=-4),
        Req(OpCode.exists, ExistsRequest(b, False), xid=-8),
        Req(OpCode.getData, GetDataRequest(b, False), xid=0x7FFFFFFF),
        Req(OpCode.create, CreateRequest(f"{b}/x", b"", OPEN, 0), xid=-100),
        Req(OpCode.sync, SyncRequest(b), xid=5),
        Req(OpCode.sync, SyncRequest(b), xid=5),
        exists(b),
        # A request pipelined behind closeSession: Apache answers SessionExpired or drops it,
        # depending on a race between its NIO and prep threads, so only the close is compared.
        Pipeline("a", (_body(close()),)),
        Handshake("after close in a pipeline", session_of="a"),
    ]


def sc_session_close(b: str) -> list[Step]:
    return [
        Connect("a"),
        Connect("b"),
        create(b),
        create(f"{b}/e1", flags=EPHEMERAL, s="b"),
        create(f"{b}/e2", flags=EPHEMERAL_SEQ, s="b"),
        create(f"{b}/p", s="b"),
        exists(f"{b}/e1", True),
        get(f"{b}/e2-0000000001", True),
        ls(b, True),
        ephemerals("/", s="b"),
        close("b"),
        ls2(b),
        ephemerals("/"),
        Handshake("closed session", session_of="b"),
    ]


def sc_session_expiry(b: str) -> list[Step]:
    return [
        Connect("a"),
        Connect("b", timeout_ms=400),
        create(b),
        create(f"{b}/e1", b"", EPHEMERAL, s="b"),
        create(f"{b}/e2", b"", EPHEMERAL, s="b"),
        exists(f"{b}/e1", True),
        get(f"{b}/e2", True),
        ls2(b, True),
        Abandon("b"),
        AwaitEvents("a", 3, unordered=True),
        ls2(b),
        Handshake("expired session", session_of="b"),
        exists(f"{b}/e1"),
    ]


def sc_handshakes(b: str) -> list[Step]:
    return [
        Connect("a"),
        Connect("victim"),
        Connect("min", timeout_ms=1),
        Connect("max", timeout_ms=1_000_000),
        create(b),
        create(f"{b}/v", flags=EPHEMERAL, s="victim"),
        # a wrong password closes the session's live connection, the session itself lives on
        Handshake("wrong password", session_of="victim", passwd="wrong"),
        exists(f"{b}/v"),
        Handshake("unknown session", session_id=0x0123456789AB),
        Handshake("lastZxidSeen ahead", last_zxid="ahead"),
        Handshake("negative timeout", timeout_ms=-5),
        Handshake("re-attach with own password", session_of="victim"),
        exists(f"{b}/v"),
        exists(b),
    ]


def sc_session_moved(b: str) -> list[Step]:
    return [
        Connect("a"),
        Connect("w"),
        create(b),
        create(f"{b}/e", flags=EPHEMERAL),
        get(f"{b}/e", True),
        exists(f"{b}/e", True, s="w"),
        Move("a"),
        exists(f"{b}/e", s="a.old"),
        set_(f"{b}/e", b"watch moved?", s="w"),
        exists(f"{b}/e"),
        create(f"{b}/e2", flags=EPHEMERAL),
        ephemerals(b),
        close("a"),
        ls2(b, s="w"),
    ]


def sc_handshake_variants(b: str) -> list[Step]:
    return [
        Connect("a"),
        create(b),
        Handshake("no readOnly byte", send_read_only_byte=False),
        Handshake("readOnly requested", read_only=True),
        Handshake("zero timeout", timeout_ms=0),
        Handshake("short password", passwd_len=4),
        Handshake("own session, no readOnly byte", session_of="a", send_read_only_byte=False),
        exists(b),
        Handshake("own session, wrong password", session_of="a", passwd="wrong"),
        exists(b),
    ]


def sc_ephemerals_allchildren(b: str) -> list[Step]:
    return [
        Connect("a"),
        Connect("b"),
        create(b),
        create(f"{b}/e1", flags=EPHEMERAL),
        create(f"{b}/p"),
        create(f"{b}/p/e2", flags=EPHEMERAL),
        create(f"{b}/p/q"),
        create(f"{b}/p/q/e3", flags=EPHEMERAL_SEQ),
        create(f"{b}/eb", flags=EPHEMERAL, s="b"),
        ephemerals(b),
        ephemerals(f"{b}/p"),
        ephemerals(f"{b}/p/"),
        ephemerals(f"{b}/e"),
        ephemerals(f"{b}/none"),
        ephemerals(b, s="b"),
        allchildren(b),
        allchildren(f"{b}/p"),
        allchildren(f"{b}/e1"),
        allchildren(f"{b}/none"),
        allchildren("/zookeeper"),
    ]


def sc_whoami_auth(b: str) -> list[Step]:
    return [
        Connect("a"),
        Connect("c"),
        whoami(),
        auth("digest", b"alice:secret"),
        auth("digest", b"bob:hunter2"),
        auth("digest", b"alice:secret"),
        whoami(),
        auth("digest", b"nocolon"),
        whoami(),
        auth("nosuchscheme", b"x", s="c", closes=True),
        Reclaim("c"),
        Connect("d"),
        auth("world", b"anyone", s="d", closes=True),
        Reclaim("d"),
        exists("/", s="a"),
    ]


def sc_disabled_and_unknown_ops(b: str) -> list[Step]:
    return [
        Connect("a"),
        Req(OpCode.reconfig, ReconfigRequest("server.2=127.0.0.1:1:2;3", None, None, -1)),
        Req(OpCode.reconfig, ReconfigRequest(None, None, None, -1)),
        exists("/"),
        Connect("s"),
        Req(OpCode.sasl, GetSASLRequest(b"token"), "s", closes=True),
        exists("/", s="s"),
        Connect("u"),
        Req(99, None, "u", closes=True),
        Reclaim("u"),
        Connect("y"),
        Req(OpCode.error, None, "y", closes=True),
        Reclaim("y"),
        exists("/"),
    ]


def sc_top_level_check(b: str) -> list[Step]:
    # A check (13) outside multi gets no reply at all from Apache 3.8 (the session stays usable).
    return [
        Connect("a"),
        create(b),
        Connect("c"),
        Req(OpCode.check, CheckVersionRequest(b, 0), "c", timeout_s=1.5),
        exists(b, s="c"),
        Req(OpCode.check, CheckVersionRequest(b, 7), "c", timeout_s=1.5),
        exists(b),
    ]


def sc_client_sends_create_session(b: str) -> list[Step]:
    # Apache runs a client's createSession (-10) through the request pipeline: the empty body
    # fails to decode as a CreateSessionTxn -> MarshallingError, with a fresh zxid consumed, and
    # the connection stays open.
    return [
        Connect("a"),
        exists("/"),
        Connect("x"),
        Req(OpCode.createSession, None, "x", closes=True),
        exists("/"),
        exists("/", s="x"),
        Reclaim("x"),
        exists("/"),
    ]


def sc_client_sends_delete_container(b: str) -> list[Step]:
    # deleteContainer (20) is the server's own op (ContainerManager); a client sending it gets
    # BadArguments with a fresh zxid, and the connection stays open.
    return [
        Connect("a"),
        create(f"{b}/c", b"", flags=4),  # CONTAINER
        Req(OpCode.deleteContainer, _s(f"{b}/c")),
        exists(f"{b}/c"),
        exists("/"),
    ]


def _s(path: str) -> bytes:
    raw = path.encode()
    return len(raw).to_bytes(4, "big") + raw


MALFORMED: tuple[tuple[str, int, bytes], ...] = (
    ("getData empty body", OpCode.getData, b""),
    ("getData truncated path", OpCode.getData, b"\x00\x00\x00\x10/ab"),
    ("getData no watch byte", OpCode.getData, _s("/")),
    ("getData trailing bytes", OpCode.getData, _s("/") + b"\x00extra"),
    ("exists negative path length", OpCode.exists, b"\xff\xff\xff\xfe\x00"),
    ("create truncated acl", OpCode.create, _s("/mal") + b"\x00\x00\x00\x00\x00\x00\x00\x05"),
    ("setData no version", OpCode.setData, _s("/") + b"\x00\x00\x00\x00"),
    ("delete empty body", OpCode.delete, b""),
    ("multi truncated", OpCode.multi, b"\x00\x00\x00\x01\x00"),
    ("getChildren2 invalid utf-8", OpCode.getChildren2, b"\x00\x00\x00\x02/\xff\x00"),
    ("whoAmI with a body", OpCode.whoAmI, b"\x00\x00\x00\x01"),
)


def sc_malformed_bodies(b: str) -> list[Step]:
    steps: list[Step] = [Connect("a"), create(b)]
    for i, (_, op, body) in enumerate(MALFORMED):
        s = f"m{i}"
        steps += [Connect(s), Req(op, body, s), exists(b, s=s), Reclaim(s)]
    steps += [exists(b), exists("/mal")]
    return steps


BAD_PATHS = (
    "",
    "relative",
    "//",
    "/a//b",
    "/trailing/",
    "/.",
    "/..",
    "/a/./b",
    "/a/../b",
    "/a/.",
    "/nul\x00char",
    "/ctl\x01",
    "/del\x7f",
    "/c1\x85",
    "/pua\ue000",
    "/spec\ufff5",
)
OK_ODD_PATHS = ("/...", "/.a", "/a.", "/sp ace", "/é", "/日本")


def sc_invalid_paths(b: str) -> list[Step]:
    steps: list[Step] = [Connect("a"), create(b)]
    for p in BAD_PATHS:
        steps += [create(p), get(p), exists(p), set_(p, b"x"), delete(p), ls2(p), sync(p)]
    for p in OK_ODD_PATHS:
        steps += [create(b + p), get(b + p)]
    steps += [ls(b), create(f"{b}/x"), get(f"{b}/x"), create(f"{b}/x/")]
    return steps


def sc_root_and_system(b: str) -> list[Step]:
    return [
        Connect("a"),
        create("/"),
        create2("/", flags=PERSISTENT_SEQ),
        delete("/"),
        delete("/zookeeper"),
        delete("/zookeeper/config"),
        delete("/zookeeper/quota"),
        exists("/zookeeper"),
        ls("/zookeeper"),
        get("/zookeeper/config"),
        getacl("/zookeeper/config"),
        getacl("/zookeeper"),
        getacl("/"),
        set_("/zookeeper/config", b"x"),
        setacl("/zookeeper/config", OPEN),
        set_("/zookeeper", b"x"),
        create("/zookeeper/mine"),
        exists("/zookeeper/mine"),
        delete("/zookeeper/mine"),
        create("/zookeeper/quota/q"),
        delete("/zookeeper/quota/q"),
        sync("/"),
        sync(f"{b}/nonexistent"),
        sync("/zookeeper"),
        exists(b),
    ]


def sc_quota_stats(b: str) -> list[Step]:
    # What zkCli's setquota does (client-side creates); the server keeps zookeeper_stats current.
    q = f"/zookeeper/quota{b}"
    return [
        Connect("a"),
        create(b, b"12345"),
        create(f"{b}/c1", b"abc"),
        create(q),
        create(f"{q}/zookeeper_limits", b"count=10,bytes=1000"),
        create(f"{q}/zookeeper_stats", b"count=0,bytes=0"),
        get(f"{q}/zookeeper_stats"),
        create(f"{b}/c2", b"0123456789"),
        get(f"{q}/zookeeper_stats"),
        set_(f"{b}/c1", b""),
        get(f"{q}/zookeeper_stats"),
        delete(f"{b}/c2"),
        get(f"{q}/zookeeper_stats"),
        get(f"{q}/zookeeper_limits"),
        *[create(f"{b}/n{i}") for i in range(12)],
        get(f"{q}/zookeeper_stats"),
        ls2(q),
        allchildren("/zookeeper"),
    ]


def sc_maxbuffer(b: str) -> list[Step]:
    # setData frame = len(4) + xid, type(8) + path(4+n) + data(4+m) + version(4); the length
    # field itself is not counted by jute.maxbuffer.
    p = f"{b}/big"
    at = DEFAULT_JUTE_MAXBUFFER - (8 + 4 + len(p.encode()) + 4 + 4)
    return [
        Connect("a"),
        create(b),
        create(p),
        set_(p, b"x" * (at - 1000)),
        exists(p),
        set_(p, b"y" * at),
        exists(p),
        get(p),
        Connect("b"),
        set_(p, b"z" * (at + 1), s="b"),
        AwaitClose("b"),
        Reclaim("b"),
        exists(p),
        Connect("c"),
        create(f"{b}/big2", b"w" * (at - 100), s="c"),
        exists(f"{b}/big2"),
        Connect("d"),
        set_(p, b"q" * (DEFAULT_JUTE_MAXBUFFER + 2048), s="d"),
        AwaitClose("d"),
        Reclaim("d"),
        exists(p),
    ]


def sc_ttl_and_containers_extended(b: str) -> list[Step]:
    return [
        Connect("a"),
        create(b),
        ttl(f"{b}/t", 10_000),
        ttl(f"{b}/ts-", 5_000, TTL_SEQ),
        ttl(f"{b}/t0", 0),
        ttl(f"{b}/tneg", -1),
        ttl(f"{b}/tmax", (1 << 40) - 1),
        ttl(f"{b}/tover", 1 << 40),
        ttl(f"{b}/tpers", 1000, PERSISTENT),
        ttl(f"{b}/teph", 1000, EPHEMERAL),
        ttl(f"{b}/tcont", 1000, CONTAINER),
        create(f"{b}/viacreate", flags=TTL),
        create2(f"{b}/viacreate2", flags=TTL_SEQ),
        container(f"{b}/cont"),
        multi((OpCode.createTTL, CreateTTLRequest(f"{b}/mt", b"", OPEN, TTL, 3000))),
        multi((OpCode.createTTL, CreateTTLRequest(f"{b}/mt0", b"", OPEN, TTL, 0))),
        exists(f"{b}/t"),
        get(f"{b}/ts-0000000001"),
        ls2(b),
        create(f"{b}/t/child"),
        create(f"{b}/t/e", flags=EPHEMERAL),
        exists(f"{b}/t"),
    ]


def sc_ttl_disabled(b: str) -> list[Step]:
    return [
        Connect("a"),
        create(b),
        ttl(f"{b}/t", 10_000),
        ttl(f"{b}/t0", 0),
        ttl(f"{b}/tp", 1000, PERSISTENT),
        multi((OpCode.createTTL, CreateTTLRequest(f"{b}/mt", b"", OPEN, TTL, 3000))),
        container(f"{b}/c"),
        exists(f"{b}/c"),
        ls2(b),
    ]


def sc_sync_and_pipelined_reads(b: str) -> list[Step]:
    return [
        Connect("a"),
        Connect("b"),
        create(b),
        set_(b, b"1", s="b"),
        sync(b),
        get(b),
        sync(b, s="b"),
        sync("/"),
        sync(f"{b}/none"),
        exists(b),
    ]


Scenario = Callable[[str], list[Step]]


@dataclasses.dataclass(frozen=True)
class Case:
    fn: Scenario
    extended: bool = False
    bug: str | None = None


CASES: dict[str, Case] = {
    "create_modes": Case(sc_create_modes),
    "create_errors": Case(sc_create_errors),
    "delete": Case(sc_delete),
    "get_set": Case(sc_get_set),
    "acl_digest": Case(sc_acl_digest),
    "acl_schemes": Case(sc_acl_schemes),
    "acl_perms": Case(sc_acl_perms),
    "super_digest": Case(sc_super_digest),
    "setacl_versions": Case(sc_setacl_versions),
    "children": Case(sc_children),
    "sequential": Case(sc_sequential),
    "watches_oneshot": Case(sc_watches_oneshot),
    "watch_edges": Case(sc_watch_edges),
    "pipelined": Case(sc_pipelined),
    "multi_success": Case(sc_multi_success),
    "multi_failures": Case(sc_multi_failures),
    "multi_empty": Case(sc_multi_empty),
    "multi_read": Case(sc_multi_read),
    # once a zkref bug (multiRead set watches); Apache 3.8 drops the ops' watch flags
    "multi_read_watch_flags": Case(sc_multi_read_watch_flags),
    "check_remove_watches": Case(sc_check_remove_watches),
    "addwatch_persistent": Case(sc_addwatch_persistent),
    "addwatch_recursive": Case(sc_addwatch_recursive),
    "watch_mode_combos": Case(sc_watch_mode_combos),
    "setwatches_reconnect": Case(sc_setwatches_reconnect),
    "setwatches2_reconnect": Case(sc_setwatches2_reconnect),
    "setwatches_relative_zxid": Case(sc_setwatches_relative_zxid),
    "odd_xids": Case(sc_odd_xids),
    "session_close": Case(sc_session_close),
    "session_expiry": Case(sc_session_expiry),
    "handshakes": Case(sc_handshakes),
    "handshake_variants": Case(sc_handshake_variants),
    "session_moved": Case(sc_session_moved),
    "ephemerals_allchildren": Case(sc_ephemerals_allchildren),
    "whoami_auth": Case(sc_whoami_auth),
    "disabled_and_unknown_ops": Case(sc_disabled_and_unknown_ops),
    "top_level_check": Case(sc_top_level_check),
    # once a zkref bug (Unimplemented + close); Apache: MarshallingError with a new zxid
    "client_sends_create_session": Case(sc_client_sends_create_session),
    "client_sends_delete_container": Case(sc_client_sends_delete_container),
    "malformed_bodies": Case(sc_malformed_bodies),
    "invalid_paths": Case(sc_invalid_paths),
    "root_and_system": Case(sc_root_and_system),
    "quota_stats": Case(sc_quota_stats),
    "maxbuffer": Case(sc_maxbuffer),
    "sync": Case(sc_sync_and_pipelined_reads),
    "ttl_disabled": Case(sc_ttl_disabled),
    "ttl_and_containers_extended": Case(sc_ttl_and_containers_extended, extended=True),
}


def _params(extended: bool) -> list[object]:
    out: list[object] = []
    for name, case in CASES.items():
        if case.extended != extended:
            continue
        marks = []
        if case.bug is not None:
            marks.append(pytest.mark.xfail(strict=True, reason=f"zkref bug: {case.bug}"))
        out.append(pytest.param(name, id=name, marks=marks))
    return out


# --- servers and the run summary ---------------------------------------------------------------

Pair = tuple[int, int]  # (apache port, zkref port)


SUPER_CFG = {"DigestAuthenticationProvider.superDigest": digest_id("super", "opensesame")}


def _pair(tmp: Path, extended: bool) -> Iterator[Pair]:
    with (
        standalone(
            "zookeeper",
            tmp / "zk",
            tick_time_ms=TICK_MS,
            extended_types=extended,
            extra_cfg=SUPER_CFG,
        ) as zk,
        standalone(
            "zkref", tmp / "zr", tick_time_ms=TICK_MS, extended_types=extended, extra_cfg=SUPER_CFG
        ) as zr,
    ):
        yield zk.port, zr.port


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    yield from _pair(tmp_path_factory.mktemp("diff"), False)


@pytest.fixture(scope="module")
def ext_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pair]:
    yield from _pair(tmp_path_factory.mktemp("diffext"), True)


@dataclasses.dataclass
class _Tally:
    cases: int = 0
    cases_passed: int = 0
    steps: int = 0
    steps_passed: int = 0
    fields: int = 0
    fields_passed: int = 0
    failing: list[str] = dataclasses.field(default_factory=list)


_TALLY = _Tally()


@pytest.fixture(scope="module", autouse=True)
def _summary(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    t = _TALLY
    if t.cases == 0:
        return
    lines = [
        f"differential: {t.cases_passed}/{t.cases} scenarios, {t.steps_passed}/{t.steps} steps, "
        f"{t.fields_passed}/{t.fields} fields equal (Apache ZooKeeper 3.8 vs zkref)",
    ]
    if t.failing:
        lines.append("differential: scenarios with differences: " + ", ".join(t.failing))
    # Written past pytest's output capture, so a plain run shows the figures too.
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capman = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capman is None:
        print("\n".join(lines))
        return
    with capman.global_and_fixture_disabled():
        reporter.write_line("")
        for line in lines:
            reporter.write_line(line)


def _out_dir(name: str) -> Path:
    """Where a failing scenario's two transcripts go (outside pytest's rotating tmp dirs)."""
    base = Path(
        os.environ.get("ZKREF_DIFF_OUT", Path(tempfile.gettempdir()) / "zkref-differential")
    )
    d = base / name
    d.mkdir(parents=True, exist_ok=True)
    return d


def _run_case(name: str, ports: Pair) -> None:
    steps = CASES[name].fn(f"/{name}")
    zk, zr = run_pair(steps, ("zookeeper", ports[0]), ("zkref", ports[1]))
    ms = compare(zk, zr)
    bad_steps = {m.step for m in ms}
    nfields = sum(len(r.fields) for r in zk.steps)
    _TALLY.cases += 1
    _TALLY.steps += len(steps)
    _TALLY.steps_passed += len(steps) - len(bad_steps)
    _TALLY.fields += nfields
    _TALLY.fields_passed += max(0, nfields - len(ms))
    if ms or os.environ.get("ZKREF_DIFF_DUMP"):
        out = _out_dir(name)
        (out / "zookeeper.txt").write_text(render(zk))
        (out / "zkref.txt").write_text(render(zr))
    if ms:
        _TALLY.failing.append(name)
        pytest.fail(
            f"scenario {name}: " + format_mismatches(ms) + f"\n(transcripts in {out})",
            pytrace=False,
        )
    _TALLY.cases_passed += 1


@pytest.mark.parametrize("name", _params(extended=False))
def test_differential(name: str, pair: Pair) -> None:
    _run_case(name, pair)


@pytest.mark.parametrize("name", _params(extended=True))
def test_differential_extended_types(name: str, ext_pair: Pair) -> None:
    _run_case(name, ext_pair)


# --- the comparator itself ---------------------------------------------------------------------


def _stat_fields(prefix: str, czxid: int, mzxid: int, t0: int, version: int) -> dict[str, Raw]:
    return {
        f"{prefix}.czxid": Z(czxid),
        f"{prefix}.mzxid": Z(mzxid),
        f"{prefix}.pzxid": Z(czxid),
        f"{prefix}.ctime": T(t0, czxid),
        f"{prefix}.mtime": T(t0 + (mzxid - czxid), mzxid),
        f"{prefix}.version": version,
        f"{prefix}.ephemeralOwner": S(0),
    }


def _hand_transcript(server: str, base_zxid: int, sid: int, t0: int) -> Transcript:
    t = Transcript(server)
    t.steps.append(StepRecord(0, "a:connect", {"connect.sessionId": S(sid)}))
    f1: dict[str, Raw] = {"reply.err": "OK", "reply.zxid": Z(base_zxid + 1)}
    f1.update(_stat_fields("reply.body.stat", base_zxid + 1, base_zxid + 1, t0, 0))
    t.steps.append(StepRecord(1, "a:create2 '/x'", f1))
    f2: dict[str, Raw] = {"reply.err": "OK", "reply.zxid": Z(base_zxid + 2)}
    f2.update(_stat_fields("reply.body.stat", base_zxid + 1, base_zxid + 2, t0, 1))
    f2["after.b[0]"] = "NodeDataChanged SyncConnected /x"
    t.steps.append(StepRecord(2, "a:setData '/x'", f2))
    return t


def test_normalisation_hides_absolute_zxids_times_and_session_ids() -> None:
    a = _hand_transcript("zookeeper", 0x100, 0x1000F, 1_700_000_000_000)
    b = _hand_transcript("zkref", 0x7000, 0x5555, 1_800_000_000_000)
    assert compare(a, b) == []
    norm = normalise(a)
    assert norm[2][2]["reply.body.stat.mzxid"] == "z2"
    assert norm[2][2]["reply.body.stat.ctime"] == "t(z1)"
    assert norm[0][2]["connect.sessionId"] == "S1"


def test_comparator_catches_a_planted_stat_difference() -> None:
    a = _hand_transcript("zookeeper", 0x100, 0x1000F, 1_700_000_000_000)
    b = _hand_transcript("zkref", 0x100, 0x1000F, 1_700_000_000_000)
    b.steps[2].fields["reply.body.stat.version"] = 2  # planted: setData reports version 2
    ms = compare(a, b)
    assert [(m.step, m.field, m.left, m.right) for m in ms] == [
        (2, "reply.body.stat.version", 1, 2)
    ]
    assert "step 2 [a:setData '/x'] reply.body.stat.version: 1 != 2" in format_mismatches(ms)


def test_comparator_catches_planted_zxid_time_and_event_differences() -> None:
    a = _hand_transcript("zookeeper", 0x100, 0x1000F, 1_700_000_000_000)
    b = _hand_transcript("zkref", 0x100, 0x1000F, 1_700_000_000_000)
    # planted: setData keeps the old mzxid (and mtime), so czxid == mzxid on one side only
    b.steps[2].fields["reply.body.stat.mzxid"] = Z(0x101)
    b.steps[2].fields["reply.body.stat.mtime"] = T(1_700_000_000_000, 0x101)
    del b.steps[2].fields["after.b[0]"]  # planted: the watch event is not sent
    got = {(m.step, m.field) for m in compare(a, b)}
    assert got == {
        (2, "reply.body.stat.mzxid"),
        (2, "reply.body.stat.mtime"),
        (2, "after.b[0]"),
    }
    # a time outside the window of the write that produced its zxid is flagged
    c = _hand_transcript("zkref", 0x100, 0x1000F, 1_700_000_000_000)
    c.windows[0x102] = (1_700_000_000_000, 1_700_000_000_003)
    c.steps[2].fields["reply.body.stat.mtime"] = T(1_699_000_000_000, 0x102)
    ms = compare(a, c)
    assert [m.field for m in ms] == ["reply.body.stat.mtime"]
    assert "outside-write-window" in str(ms[0].right)


_PLANTED_SCRIPT: list[Step] = [
    Connect("a"),
    Connect("b"),
    create2("/planted", b"v0"),
    get("/planted", True, s="b"),
    set_("/planted", b"v1"),
    exists("/planted"),
    delete("/planted"),
]


def test_recorded_transcripts_compare_equal_then_a_planted_bug_is_caught(pair: Pair) -> None:
    """Two real runs of one script on Apache ZooKeeper (other zxids, times and session ids)
    compare equal; the same recording with one stat field changed is reported at that field."""

    async def twice() -> tuple[Transcript, Transcript]:
        first = await run_script("zookeeper", "127.0.0.1", pair[0], _PLANTED_SCRIPT)
        second = await run_script("zookeeper", "127.0.0.1", pair[0], _PLANTED_SCRIPT)
        return first, second

    first, second = asyncio.run(twice())
    assert compare(first, second) == [], format_mismatches(compare(first, second))
    setdata = next(r for r in second.steps if r.label.startswith("a:setData"))
    setdata.fields["reply.body.stat.dataLength"] = 3
    ms = compare(first, second)
    assert [(m.step, m.label, m.field, m.left, m.right) for m in ms] == [
        (setdata.index, setdata.label, "reply.body.stat.dataLength", 2, 3)
    ]
