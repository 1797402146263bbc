"""zkref.core.reads: FinalRequestProcessor's read rules."""

from __future__ import annotations

from zkref.core.acl import OPEN_ACL_UNSAFE, AuthInfo, generate_digest
from zkref.core.datatree import DataTree
from zkref.core.reads import ReadResult, WatchReg, process_read
from zkref.wire.constants import Err, OpCode
from zkref.wire.records import (
    ACL,
    CreateTxn,
    ErrorResponse,
    ExistsRequest,
    ExistsResponse,
    GetACLRequest,
    GetACLResponse,
    GetAllChildrenNumberRequest,
    GetAllChildrenNumberResponse,
    GetChildren2Request,
    GetChildren2Response,
    GetChildrenRequest,
    GetChildrenResponse,
    GetDataRequest,
    GetDataResponse,
    GetEphemeralsRequest,
    GetEphemeralsResponse,
    Id,
    MultiReadRequest,
    MultiReadResponse,
    TxnHeader,
)

S1 = 0x101
S2 = 0x102
ANY = AuthInfo((Id("ip", "127.0.0.1"),))
BOB = Id("digest", generate_digest("bob:pw"))
AS_BOB = AuthInfo((Id("ip", "127.0.0.1"), BOB))
SUPER = AuthInfo((Id("ip", "127.0.0.1"),), is_super=True)
NO_READ = (ACL(31 & ~1, Id("world", "anyone")),)


def build() -> DataTree:
    t = DataTree()
    zxid = 0

    def create(
        path: str, data: bytes | None = b"d", acl: tuple[ACL, ...] = OPEN_ACL_UNSAFE, owner: int = 0
    ) -> None:
        nonlocal zxid
        zxid += 1
        r = t.apply(
            TxnHeader(owner, zxid, zxid, zxid, 1), CreateTxn(path, data, acl, owner != 0, -1)
        )
        assert r.err == 0

    create("/a")
    create("/a/z")
    create("/a/b")
    create("/a/b/c")
    create("/secret", b"s", NO_READ)
    create("/secret/kid")
    create("/bob", b"b", (ACL(1, Id("world", "anyone")), ACL(31, BOB)))
    create("/a/e1", owner=S1)
    create("/a/b/e2", owner=S1)
    create("/x1", owner=S1)
    create("/x2", owner=S2)
    return t


def read(t: DataTree, op: int, req: object, auth: AuthInfo = ANY, **kw: bool) -> ReadResult:
    return process_read(t, op, req, auth, S1, **kw)


def test_get_data() -> None:
    t = build()
    r = read(t, OpCode.getData, GetDataRequest("/a", True))
    node = t.get("/a")
    assert node is not None
    assert r == ReadResult(0, GetDataResponse(b"d", node.stat()), WatchReg("/a", "data"))
    assert read(t, OpCode.getData, GetDataRequest("/a", False)).watch is None
    # NoNode and NoAuth register nothing; reads do not validate paths
    assert read(t, OpCode.getData, GetDataRequest("/nope", True)) == ReadResult(-101, None, None)
    assert read(t, OpCode.getData, GetDataRequest("bad//path", True)).err == Err.NONODE
    assert read(t, OpCode.getData, GetDataRequest("/secret", True)) == ReadResult(-102, None, None)
    assert read(t, OpCode.getData, GetDataRequest("/secret", True), SUPER).err == 0
    # the root is also reachable as "" (ZooKeeper's alias)
    assert read(t, OpCode.getData, GetDataRequest("", False)).err == 0


def test_exists() -> None:
    t = build()
    r = read(t, OpCode.exists, ExistsRequest("/nope", True))
    assert r == ReadResult(-101, None, WatchReg("/nope", "exist"))
    assert read(t, OpCode.exists, ExistsRequest("/nope", False)).watch is None
    assert read(t, OpCode.exists, ExistsRequest("/a\0", True)) == ReadResult(-8, None, None)
    node = t.get("/secret")
    assert node is not None
    # 3.8.0: no permission needed
    r = read(t, OpCode.exists, ExistsRequest("/secret", True))
    assert r == ReadResult(0, ExistsResponse(node.stat()), WatchReg("/secret", "exist"))
    # 3.8.4 / 3.9.2: READ needed on an existing node, never on a missing one
    r = read(t, OpCode.exists, ExistsRequest("/secret", True), exists_requires_read=True)
    assert r == ReadResult(-102, None, None)
    r = read(t, OpCode.exists, ExistsRequest("/nope", True), exists_requires_read=True)
    assert r.err == Err.NONODE and r.watch == WatchReg("/nope", "exist")


def test_get_children() -> None:
    t = build()
    r = read(t, OpCode.getChildren, GetChildrenRequest("/a", True))
    assert r == ReadResult(0, GetChildrenResponse(("z", "b", "e1")), WatchReg("/a", "child"))
    node = t.get("/a")
    assert node is not None
    r = read(t, OpCode.getChildren2, GetChildren2Request("/a", False))
    assert r == ReadResult(0, GetChildren2Response(("z", "b", "e1"), node.stat()), None)
    assert read(t, OpCode.getChildren, GetChildrenRequest("/nope", True)).watch is None
    assert read(t, OpCode.getChildren, GetChildrenRequest("/secret", False)).err == Err.NOAUTH
    assert read(t, OpCode.getChildren2, GetChildren2Request("/secret", False)).err == Err.NOAUTH
    r = read(t, OpCode.getChildren, GetChildrenRequest("/", False))
    # ZooKeeper's (HashSet) order, as Java 17 iterates the same insertions
    assert r.response == GetChildrenResponse(("a", "x1", "x2", "secret", "zookeeper", "bob"))


def test_get_acl_masks_digests_without_admin() -> None:
    t = build()
    node = t.get("/bob")
    assert node is not None
    masked = (ACL(1, Id("world", "anyone")), ACL(31, Id("digest", "bob:x")))
    r = read(t, OpCode.getACL, GetACLRequest("/bob"))
    assert r == ReadResult(0, GetACLResponse(masked, node.stat()), None)
    r = read(t, OpCode.getACL, GetACLRequest("/bob"), AS_BOB)
    assert r.response == GetACLResponse(node.acl, node.stat())
    # neither READ nor ADMIN -> NoAuth; ADMIN alone is enough
    other = DataTree()
    for zxid, (path, perms) in enumerate((("/admin", 16), ("/write", 2)), start=1):
        acl = (ACL(perms, Id("world", "anyone")),)
        other.apply(TxnHeader(0, zxid, zxid, 1, 1), CreateTxn(path, b"", acl, False, -1))
    assert read(other, OpCode.getACL, GetACLRequest("/admin")).err == 0
    assert read(other, OpCode.getACL, GetACLRequest("/write")).err == Err.NOAUTH
    assert read(other, OpCode.getACL, GetACLRequest("/write"), SUPER).err == 0
    assert read(t, OpCode.getACL, GetACLRequest("/nope")).err == Err.NONODE
    config = read(t, OpCode.getACL, GetACLRequest("/zookeeper/config"))
    assert isinstance(config.response, GetACLResponse)
    assert config.response.acl == (ACL(1, Id("world", "anyone")),)
    assert config.response.stat.aversion == -1


def test_get_all_children_number() -> None:
    t = build()

    def count(path: str) -> int:
        r = read(t, OpCode.getAllChildrenNumber, GetAllChildrenNumberRequest(path))
        assert isinstance(r.response, GetAllChildrenNumberResponse), r
        return r.response.total_number

    assert count("/a") == 5
    assert count("/a/b") == 2
    assert count("/a/b/c") == 0
    # "/" counts every node but the root: 4 system-free... + /zookeeper, quota, config
    assert count("/") == 11 + 3
    assert count("/zookeeper") == 2
    assert read(t, OpCode.getAllChildrenNumber, GetAllChildrenNumberRequest("/no")).err == -101
    assert read(t, OpCode.getAllChildrenNumber, GetAllChildrenNumberRequest("/secret")).err == -102


def test_get_ephemerals() -> None:
    t = build()

    def eph(prefix: str) -> tuple[str, ...]:
        r = read(t, OpCode.getEphemerals, GetEphemeralsRequest(prefix))
        assert isinstance(r.response, GetEphemeralsResponse)
        return r.response.ephemerals

    # ZooKeeper's order: a clone of the session's HashSet (as Java 17 iterates it)
    assert eph("/") == ("/x1", "/a/b/e2", "/a/e1")
    assert eph("") == eph(" / ") == eph(" ") == eph("/")
    assert eph("/a") == ("/a/b/e2", "/a/e1")
    assert eph("/a/b") == ("/a/b/e2",)
    assert eph("/x") == ("/x1",)  # a plain string prefix, not a path prefix
    assert eph("/nope") == ()
    r = process_read(t, OpCode.getEphemerals, GetEphemeralsRequest("/"), ANY, S2)
    assert r.response == GetEphemeralsResponse(("/x2",))


def test_multi_read() -> None:
    t = build()
    a = t.get("/a")
    assert a is not None
    req = MultiReadRequest(
        (
            (int(OpCode.getData), GetDataRequest("/a", True)),
            (int(OpCode.getChildren), GetChildrenRequest("/nope", True)),
            (int(OpCode.getData), GetDataRequest("/secret", False)),
            (int(OpCode.getChildren), GetChildrenRequest("/a/b", True)),
        )
    )
    r = read(t, OpCode.multiRead, req)
    assert r.err == 0
    assert r.response == MultiReadResponse(
        (
            (int(OpCode.getData), GetDataResponse(b"d", a.stat())),
            (-1, ErrorResponse(-101)),
            (-1, ErrorResponse(-102)),
            (int(OpCode.getChildren), GetChildrenResponse(("c", "e2"))),
        )
    )
    # ZooKeeper 3.8 drops the watch flags of a multiRead's ops
    assert r.watch is None
