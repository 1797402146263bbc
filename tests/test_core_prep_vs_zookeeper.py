"""Differential: zkref's prep + apply + reads against Apache ZooKeeper 3.8 (Debian's package).

One scripted sequence of requests goes to a real standalone ZooKeeper (through zkref's client,
which returns raw reply headers and bodies) and to zkref's core in-process. Error codes, reply
zxids (every write, failed or not, takes one), bodies and stats must be equal; only ctime/mtime
are masked. The watch events of a session close are compared in order.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from zkref.chaos.zookeeper_proc import ApacheZooKeeper, apache_zookeeper_available
from zkref.client import Client
from zkref.core.acl import OPEN_ACL_UNSAFE, READ_ACL_UNSAFE, AuthInfo, generate_digest
from zkref.core.datatree import DataTree, Trigger
from zkref.core.prep import WRITE_OPS, Prep, PrepConfig
from zkref.core.reads import process_read
from zkref.wire.constants import EventType, OpCode
from zkref.wire.records import (
    ACL,
    CheckVersionRequest,
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
    Id,
    MultiReadRequest,
    MultiRequest,
    SetACLRequest,
    SetDataRequest,
    Stat,
)

pytestmark = [
    pytest.mark.zookeeper,
    pytest.mark.slow,
    pytest.mark.skipif(not apache_zookeeper_available(), reason="Apache ZooKeeper not installed"),
]

BOB = Id("digest", generate_digest("bob:pw"))
BOB_ALL = (ACL(31, BOB),)
AUTH_ALL = (ACL(31, Id("auth", "")),)
MIXED = (ACL(1, Id("world", "anyone")), ACL(31, BOB))


@pytest.fixture(scope="module")
def zk_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    base: Path = tmp_path_factory.mktemp("core-diff-zk")
    with ApacheZooKeeper(1, base, tick_time_ms=500) as zk:
        zk.start()
        yield zk.client_port(1)


def mask(value: object) -> object:
    """Times differ between the two; everything else must not."""
    if isinstance(value, Stat):
        return dataclasses.replace(value, ctime=0, mtime=0)
    if isinstance(value, tuple):
        return tuple(mask(v) for v in value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return type(value)(
            **{f.name: mask(getattr(value, f.name)) for f in dataclasses.fields(value)}
        )
    return value


class Model:
    """zkref's core, driven the way the server core drives it."""

    def __init__(self, last_zxid: int, *, extended: bool = False) -> None:
        self.tree = DataTree(extended_types_enabled=extended)
        self.tree.last_processed_zxid = last_zxid
        self.prep = Prep(self.tree, PrepConfig(extended_types_enabled=extended))
        self.zxid = last_zxid
        self.auth: dict[int, AuthInfo] = {}

    def request(
        self, session: int, op: int, req: object
    ) -> tuple[int, int, object, tuple[object, ...]]:
        auth = self.auth[session]
        if op in WRITE_OPS:
            self.zxid += 1
            hdr, txn = self.prep.prep(session, 1, op, req, auth, 0, self.zxid)
            r = self.tree.apply(hdr, txn)
            self.prep.applied(hdr.zxid)
            return r.zxid, r.err, r.response if r.err == 0 else None, r.triggers
        res = process_read(self.tree, op, req, auth, session)
        return self.tree.last_processed_zxid, res.err, res.response if res.err == 0 else None, ()

    def close(self, session: int) -> tuple[Trigger, ...]:
        self.zxid += 1
        hdr, txn = self.prep.close_session(session, 1, 0, self.zxid)
        r = self.tree.apply(hdr, txn)
        self.prep.applied(hdr.zxid)
        return r.triggers


def script(a: int, b: int) -> list[tuple[int, int, object]]:
    c = CreateRequest
    steps: list[tuple[int, int, object]] = []

    def add(session: int, op: int, req: object) -> None:
        steps.append((session, int(op), req))

    for path in ("/", "/zookeeper", "/zookeeper/config", "/zookeeper/quota"):
        add(a, OpCode.exists, ExistsRequest(path, False))
        add(a, OpCode.getData, GetDataRequest(path, False))
        add(a, OpCode.getACL, GetACLRequest(path))
        add(a, OpCode.getChildren2, GetChildren2Request(path, False))
    add(a, OpCode.create, c("/a", b"x", OPEN_ACL_UNSAFE, 0))
    add(a, OpCode.create, c("/a", b"x", OPEN_ACL_UNSAFE, 0))
    add(a, OpCode.create2, c("/a/b", None, OPEN_ACL_UNSAFE, 0))
    for bad in (
        c("/a/b/c/d", b"", OPEN_ACL_UNSAFE, 0),
        c("/a/", b"", OPEN_ACL_UNSAFE, 0),
        c("/missing/.", b"", OPEN_ACL_UNSAFE, 0),
        c("/a/.", b"", OPEN_ACL_UNSAFE, 0),
        c("/a//b", b"", OPEN_ACL_UNSAFE, 0),
        c("bad", b"", OPEN_ACL_UNSAFE, 0),
        c("/", b"", OPEN_ACL_UNSAFE, 0),
        c("/zookeeper", b"", OPEN_ACL_UNSAFE, 0),
        c("/x", b"", (), 0),
        c("/missing/x", b"", (), 0),
        c("/x", b"", (ACL(31, Id("world", "nobody")),), 0),
        c("/x", b"", (ACL(31, Id("digest", "bob")),), 0),
        c("/x", b"", (ACL(31, Id("ip", "1.2.3.4/33")),), 0),
        c("/x", b"", AUTH_ALL, 0),
        c("/x", b"", OPEN_ACL_UNSAFE, 7),
        c("/x", b"", OPEN_ACL_UNSAFE, 5),
    ):
        add(a, OpCode.create, bad)
    add(a, OpCode.createTTL, CreateTTLRequest("/t", b"", OPEN_ACL_UNSAFE, 5, 1000))
    add(a, OpCode.createContainer, c("/box", b"", OPEN_ACL_UNSAFE, 4))
    add(a, OpCode.create, c("/box/kid", b"", OPEN_ACL_UNSAFE, 1))
    add(a, OpCode.getData, GetDataRequest("/box", False))
    for _ in range(3):
        add(a, OpCode.create, c("/a/s-", b"", OPEN_ACL_UNSAFE, 2))
    add(a, OpCode.delete, DeleteRequest("/a/s-0000000002", -1))
    add(a, OpCode.create2, c("/a/s-", b"", OPEN_ACL_UNSAFE, 2))
    add(a, OpCode.create, c("/a/", b"", OPEN_ACL_UNSAFE, 2))
    add(a, OpCode.create, c("/s", b"", OPEN_ACL_UNSAFE, 2))
    add(a, OpCode.getChildren2, GetChildren2Request("/a", False))
    add(a, OpCode.create, c("/e1", b"", OPEN_ACL_UNSAFE, 1))
    add(a, OpCode.create, c("/e1/x", b"", OPEN_ACL_UNSAFE, 0))
    for i in range(12):
        add(a, OpCode.create, c(f"/a/b/e{i}-", b"", OPEN_ACL_UNSAFE, 3))
    add(b, OpCode.create, c("/eb", b"", OPEN_ACL_UNSAFE, 1))
    add(a, OpCode.setData, SetDataRequest("/a", b"y", 5))
    add(a, OpCode.setData, SetDataRequest("/a", b"y", 0))
    add(a, OpCode.setData, SetDataRequest("/a", None, -1))
    add(a, OpCode.setData, SetDataRequest("/nope", b"", -1))
    add(a, OpCode.setData, SetDataRequest("/a/", b"", -1))
    add(a, OpCode.getData, GetDataRequest("/a", False))
    for path, version in (("/a", -1), ("/a", 9), ("/zookeeper", -1), ("/", -1), ("/a/", -1)):
        add(a, OpCode.delete, DeleteRequest(path, version))
    add(a, OpCode.delete, DeleteRequest("/nope/x", -1))
    add(a, OpCode.create, c("/secure", b"s", BOB_ALL, 0))
    add(a, OpCode.create, c("/ro", b"r", READ_ACL_UNSAFE, 0))
    add(a, OpCode.create, c("/mixed", b"m", MIXED, 0))
    add(a, OpCode.getData, GetDataRequest("/secure", False))
    add(a, OpCode.exists, ExistsRequest("/secure", False))
    add(a, OpCode.getACL, GetACLRequest("/secure"))
    add(a, OpCode.getACL, GetACLRequest("/mixed"))
    add(a, OpCode.setData, SetDataRequest("/ro", b"", -1))
    add(a, OpCode.create, c("/ro/kid", b"", OPEN_ACL_UNSAFE, 0))
    add(a, OpCode.delete, DeleteRequest("/secure", -1))
    add(a, OpCode.setACL, SetACLRequest("/a", OPEN_ACL_UNSAFE, 3))
    add(a, OpCode.setACL, SetACLRequest("/a", (), -1))
    add(a, OpCode.setACL, SetACLRequest("/a", AUTH_ALL, -1))
    add(a, OpCode.setACL, SetACLRequest("/secure", OPEN_ACL_UNSAFE, -1))
    add(a, OpCode.setACL, SetACLRequest("/a", MIXED, 0))
    add(a, OpCode.getACL, GetACLRequest("/a"))
    add(a, OpCode.setACL, SetACLRequest("/zookeeper/config", OPEN_ACL_UNSAFE, -1))
    add(a, OpCode.setData, SetDataRequest("/zookeeper/config", b"", -1))
    ok_multi = (
        (int(OpCode.create), c("/m", b"", OPEN_ACL_UNSAFE, 0)),
        (int(OpCode.create), c("/m/s", b"", OPEN_ACL_UNSAFE, 2)),
        (int(OpCode.createContainer), c("/m/c", b"", OPEN_ACL_UNSAFE, 4)),
        (int(OpCode.setData), SetDataRequest("/m", b"v", 0)),
        (int(OpCode.check), CheckVersionRequest("/m", 1)),
        (int(OpCode.delete), DeleteRequest("/m/c", -1)),
    )
    add(a, OpCode.multi, MultiRequest(ok_multi))
    bad_multi = (
        (int(OpCode.create), c("/n", b"", OPEN_ACL_UNSAFE, 0)),
        (int(OpCode.setData), SetDataRequest("/m", b"w", -1)),
        (int(OpCode.check), CheckVersionRequest("/m", 7)),
        (int(OpCode.delete), DeleteRequest("/nope", -1)),
    )
    add(a, OpCode.multi, MultiRequest(bad_multi))
    add(a, OpCode.multi, MultiRequest(()))
    # 3.8 types multi creates by their flags, whatever the wire opcode says
    add(
        a,
        OpCode.multi,
        MultiRequest(
            (
                (int(OpCode.create2), c("/m/two", b"", OPEN_ACL_UNSAFE, 0)),
                (int(OpCode.createContainer), c("/m/notbox", b"", OPEN_ACL_UNSAFE, 0)),
                (int(OpCode.create), c("/m/box", b"", OPEN_ACL_UNSAFE, 4)),
                (int(OpCode.createTTL), CreateTTLRequest("/m/t", b"", OPEN_ACL_UNSAFE, 0, -1)),
            )
        ),
    )
    add(
        a, OpCode.multi, MultiRequest(((int(OpCode.create), c("/m/bad", b"", OPEN_ACL_UNSAFE, 9)),))
    )
    add(
        a, OpCode.multi, MultiRequest(((int(OpCode.create), c("/m/ttl", b"", OPEN_ACL_UNSAFE, 5)),))
    )
    add(
        a,
        OpCode.multi,
        MultiRequest(
            (
                (int(OpCode.create), c("/nope/x", b"", OPEN_ACL_UNSAFE, 0)),
                (int(OpCode.create), c("/m/ttl", b"", OPEN_ACL_UNSAFE, 5)),
            )
        ),
    )
    add(
        a,
        OpCode.multi,
        MultiRequest(
            (
                (int(OpCode.create2), c("/m/two", b"", OPEN_ACL_UNSAFE, 0)),
                (int(OpCode.createContainer), c("/m/box", b"", OPEN_ACL_UNSAFE, 4)),
                (int(OpCode.createTTL), CreateTTLRequest("/m/t", b"", OPEN_ACL_UNSAFE, 0, 5)),
            )
        ),
    )
    add(a, OpCode.getChildren2, GetChildren2Request("/m", False))
    add(a, OpCode.exists, ExistsRequest("/m/box", False))
    add(a, OpCode.exists, ExistsRequest("/m/notbox", False))
    add(a, OpCode.getData, GetDataRequest("/m", False))
    add(a, OpCode.create, c("/m/s", b"", OPEN_ACL_UNSAFE, 2))
    add(
        a,
        OpCode.multiRead,
        MultiReadRequest(
            (
                (int(OpCode.getData), GetDataRequest("/m", False)),
                (int(OpCode.getChildren), GetChildrenRequest("/nope", False)),
                (int(OpCode.getData), GetDataRequest("/secure", False)),
                (int(OpCode.getChildren), GetChildrenRequest("/m", False)),
            )
        ),
    )
    add(a, OpCode.create, c("/many", b"", OPEN_ACL_UNSAFE, 0))
    r = random.Random(5)
    names = [f"{r.choice(['job', 'lock', 'x', 'member'])}-{r.randrange(10**6)}" for _ in range(40)]
    for name in names:
        add(a, OpCode.create, c(f"/many/{name}", b"", OPEN_ACL_UNSAFE, 0))
    for name in names[:25:2]:
        add(a, OpCode.delete, DeleteRequest(f"/many/{name}", -1))
    add(a, OpCode.getChildren, GetChildrenRequest("/many", False))
    add(a, OpCode.getChildren, GetChildrenRequest("/", False))
    add(a, OpCode.getChildren, GetChildrenRequest("/a/b", False))
    add(a, OpCode.getEphemerals, GetEphemeralsRequest("/"))
    add(a, OpCode.getEphemerals, GetEphemeralsRequest("/a/b/e1"))
    add(b, OpCode.getEphemerals, GetEphemeralsRequest(""))
    add(a, OpCode.getAllChildrenNumber, GetAllChildrenNumberRequest("/"))
    add(a, OpCode.getAllChildrenNumber, GetAllChildrenNumberRequest("/a"))
    add(a, OpCode.getAllChildrenNumber, GetAllChildrenNumberRequest("/nope"))
    # odd paths and system nodes
    for path in ("", "/a\0b", "/\x01", "/\ud7ff", "/\ue000", "/a/..", "/a/...", "/zookeeper/x"):
        add(a, OpCode.create, c(path, b"", OPEN_ACL_UNSAFE, 0))
        add(a, OpCode.exists, ExistsRequest(path, False))
        add(a, OpCode.getData, GetDataRequest(path, False))
        add(a, OpCode.getChildren, GetChildrenRequest(path, False))
        add(a, OpCode.setData, SetDataRequest(path, b"", -1))
        add(a, OpCode.delete, DeleteRequest(path, -1))
    add(a, OpCode.getData, GetDataRequest("", False))
    add(a, OpCode.getAllChildrenNumber, GetAllChildrenNumberRequest(""))
    add(a, OpCode.setData, SetDataRequest("/zookeeper", b"z", -1))
    add(a, OpCode.setData, SetDataRequest("/", b"r", -1))
    add(a, OpCode.getData, GetDataRequest("/", False))
    add(a, OpCode.delete, DeleteRequest("/zookeeper/quota", -1))
    add(a, OpCode.setACL, SetACLRequest("/zookeeper/quota", (ACL(17, Id("world", "anyone")),), -1))
    add(a, OpCode.create, c("/zookeeper/quota/q", b"", OPEN_ACL_UNSAFE, 0))
    # quotas (what zkCli's setquota creates): the server keeps zookeeper_stats up to date
    qz = "/zookeeper/quota"
    add(a, OpCode.setACL, SetACLRequest(qz, OPEN_ACL_UNSAFE, -1))  # read-only since above
    for path, data in (
        ("/q", b"q"),
        ("/q/x", b"abc"),
        (qz + "/q", b""),
        (qz + "/q/zookeeper_limits", b"count=10,bytes=-1=;countHardLimit=5"),
        (qz + "/q/zookeeper_stats", b"count=0,bytes=0"),
    ):
        add(a, OpCode.create, c(path, data, OPEN_ACL_UNSAFE, 0))
    add(a, OpCode.getData, GetDataRequest(qz + "/q/zookeeper_stats", False))
    add(a, OpCode.create, c("/q/y", b"12345", OPEN_ACL_UNSAFE, 0))
    add(a, OpCode.setData, SetDataRequest("/q/x", b"a", -1))
    add(a, OpCode.delete, DeleteRequest("/q/y", -1))
    add(a, OpCode.create, c("/q/x/z", None, OPEN_ACL_UNSAFE, 0))
    add(a, OpCode.getData, GetDataRequest(qz + "/q/zookeeper_stats", False))
    for path, data in (
        (qz + "/q/x", b""),
        (qz + "/q/x/zookeeper_limits", b"count=-1,bytes=100"),
        (qz + "/q/x/zookeeper_stats", b"count=0,bytes=0"),
    ):
        add(a, OpCode.create, c(path, data, OPEN_ACL_UNSAFE, 0))
    add(a, OpCode.create, c("/q/x/z/w", b"wwww", OPEN_ACL_UNSAFE, 0))
    add(a, OpCode.create, c("/q/v", b"v", OPEN_ACL_UNSAFE, 0))
    add(a, OpCode.getData, GetDataRequest(qz + "/q/zookeeper_stats", False))
    add(a, OpCode.getData, GetDataRequest(qz + "/q/x/zookeeper_stats", False))
    add(a, OpCode.delete, DeleteRequest(qz + "/q/x/zookeeper_limits", -1))
    add(a, OpCode.delete, DeleteRequest("/q/x/z/w", -1))
    add(a, OpCode.setData, SetDataRequest(qz + "/q/zookeeper_stats", b"count=1,bytes=2;zz=7", -1))
    add(a, OpCode.create, c("/q/u", b"uu", OPEN_ACL_UNSAFE, 0))
    add(a, OpCode.getData, GetDataRequest(qz + "/q/zookeeper_stats", False))
    add(a, OpCode.getData, GetDataRequest(qz + "/q/x/zookeeper_stats", False))
    # ip ACLs
    for expr in ("127.0.0.1", "127.0.0.0/8", "10.0.0.0/8", "127.0.0.1/33", "::1"):
        path = "/ip-" + str(len(steps))
        add(a, OpCode.create, c(path, b"i", (ACL(31, Id("ip", expr)),), 0))
        add(a, OpCode.getData, GetDataRequest(path, False))
    return steps


def test_same_replies_as_zookeeper(zk_port: int) -> None:
    async def main() -> None:
        ca = await Client.connect("127.0.0.1", zk_port, timeout_ms=6000)
        cb = await Client.connect("127.0.0.1", zk_port, timeout_ms=6000)
        a, b = ca.session_id, cb.session_id
        clients = {a: ca, b: cb}
        hdr, _ = await ca.raw_request(OpCode.exists, ExistsRequest("/", False))
        model = Model(hdr.zxid)
        model.auth = {s: AuthInfo((Id("ip", "127.0.0.1"),)) for s in (a, b)}

        async def compare(step: int, session: int, op: int, req: object) -> None:
            real_hdr, real_body = await clients[session].raw_request(op, req)  # type: ignore[arg-type]
            zxid, err, body, _ = model.request(session, op, req)
            where = f"step {step}: {OpCode(op).name} {req!r}"
            assert real_hdr.err == err, where
            assert real_hdr.zxid == zxid, where
            if err == 0:
                assert mask(real_body) == mask(body), where

        steps = script(a, b)
        assert len(steps) > 150
        for i, (session, op, req) in enumerate(steps[:100]):
            await compare(i, session, op, req)
        # digest auth for session a: the auth ACL now expands, /secure opens up
        await ca.add_auth("digest", b"bob:pw")
        model.auth[a] = AuthInfo((Id("ip", "127.0.0.1"), BOB))
        extra = [
            (a, int(OpCode.create), CreateRequest("/mine", b"", AUTH_ALL, 0)),
            (a, int(OpCode.getACL), GetACLRequest("/mine")),
            (b, int(OpCode.getACL), GetACLRequest("/mine")),
            (a, int(OpCode.getData), GetDataRequest("/secure", False)),
            (a, int(OpCode.getACL), GetACLRequest("/mixed")),
            (b, int(OpCode.getACL), GetACLRequest("/mixed")),
            (a, int(OpCode.setACL), SetACLRequest("/secure", OPEN_ACL_UNSAFE, 0)),
        ]
        for i, (session, op, req) in enumerate(steps[100:] + extra, start=100):
            await compare(i, session, op, req)

        # b watches a's ephemerals; a's close deletes them: same events, same order
        watched = sorted(model.tree.ephemerals_of(a))
        for path in watched:
            await compare(-1, b, int(OpCode.exists), ExistsRequest(path, True))
        await ca.close()
        triggers = model.close(a)
        expected = [
            (t.path, int(t.event))
            for t in triggers
            if t.path in watched and t.event == EventType.NodeDeleted
        ]
        assert len(expected) == 14  # /e1, /box/kid and the twelve under /a/b
        got = []
        for _ in expected:
            async with asyncio.timeout(15):
                n = await cb.events.get()
            got.append((n.path, n.type))
        assert got == expected
        # the tree after the close is the same on both sides
        for session, op, req in (
            (b, int(OpCode.getChildren2), GetChildren2Request("/a/b", False)),
            (b, int(OpCode.getChildren2), GetChildren2Request("/", False)),
            (b, int(OpCode.exists), ExistsRequest("/e1", False)),
        ):
            await compare(-2, session, op, req)
        await cb.close()

    asyncio.run(main())


@pytest.fixture(scope="module")
def zk_ttl_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    base: Path = tmp_path_factory.mktemp("core-diff-zk-ttl")
    props = {"zookeeper.extendedTypesEnabled": "true"}
    with ApacheZooKeeper(1, base, tick_time_ms=500, jvm_props=props) as zk:
        zk.start()
        yield zk.client_port(1)


def test_ttl_nodes_same_as_zookeeper(zk_ttl_port: int) -> None:
    """With extended types on. (A createTTL with a non-TTL mode is left out: it kills ZooKeeper
    3.8, which logs a txn it cannot apply; zkref answers BadArguments.)"""
    c = CreateRequest

    def ttl(path: str, flags: int, ttl_ms: int) -> CreateTTLRequest:
        return CreateTTLRequest(path, b"t", OPEN_ACL_UNSAFE, flags, ttl_ms)

    steps: list[tuple[int, object]] = [
        (int(OpCode.createTTL), ttl("/t", 5, 1000)),
        (int(OpCode.createTTL), ttl("/t", 5, 1000)),
        (int(OpCode.createTTL), ttl("/t0", 5, 0)),
        (int(OpCode.createTTL), ttl("/tbig", 5, (1 << 40))),
        (int(OpCode.createTTL), ttl("/tmax", 5, (1 << 40) - 1)),
        (int(OpCode.createTTL), ttl("/tp", 0, 100)),
        (int(OpCode.create), c("/tc", b"", OPEN_ACL_UNSAFE, 5)),
        (int(OpCode.createTTL), ttl("/t/s-", 6, 50)),
        (int(OpCode.createTTL), ttl("/t/s-", 6, 50)),
        (int(OpCode.create), c("/t/e", b"", OPEN_ACL_UNSAFE, 1)),
        (int(OpCode.setData), SetDataRequest("/t", b"new", 0)),
        (int(OpCode.getData), GetDataRequest("/t", False)),
        (int(OpCode.getData), GetDataRequest("/tmax", False)),
        (int(OpCode.getChildren2), GetChildren2Request("/t", False)),
        (
            int(OpCode.multi),
            MultiRequest(
                (
                    (int(OpCode.createTTL), ttl("/mt", 5, 10)),
                    (int(OpCode.createTTL), ttl("/mt/x", 6, 10)),
                    (int(OpCode.createContainer), c("/mc", b"", OPEN_ACL_UNSAFE, 4)),
                )
            ),
        ),
        (int(OpCode.multi), MultiRequest(((int(OpCode.createTTL), ttl("/mt0", 5, 0)),))),
        (int(OpCode.exists), ExistsRequest("/mt/x0000000000", False)),
        (int(OpCode.getEphemerals), GetEphemeralsRequest("/")),
    ]

    async def main() -> None:
        cl = await Client.connect("127.0.0.1", zk_ttl_port, timeout_ms=6000)
        hdr, _ = await cl.raw_request(OpCode.exists, ExistsRequest("/", False))
        model = Model(hdr.zxid, extended=True)
        model.auth = {cl.session_id: AuthInfo((Id("ip", "127.0.0.1"),))}
        for i, (op, req) in enumerate(steps):
            real_hdr, real_body = await cl.raw_request(op, req)  # type: ignore[arg-type]
            zxid, err, body, _ = model.request(cl.session_id, op, req)
            where = f"step {i}: {OpCode(op).name} {req!r}"
            assert (real_hdr.err, real_hdr.zxid) == (err, zxid), where
            if err == 0:
                assert mask(real_body) == mask(body), where
        await cl.close()

    asyncio.run(main())
